/**
 * The engine: a pool of pre-forked child processes that execute runs, each in
 * a fresh memory-limited worker thread, under a timeout, with the child's RSS
 * policed from outside. It implements `RunExecutor` for the worker.
 *
 * The engine owns the runs: their sessions, timeouts, aborts and the way each
 * is ended from outside. Handing a run to a child is `run-dispatch.ts`'s, the
 * children are the pool's (`child-pool.ts`), busy children's memory the
 * watch's (`busy-rss-watch.ts`), and which adaptors spares preload
 * `adaptor-preloads.ts`'s.
 *
 * States, kept in a `StateMachine` (`engine-state.ts`; each change logged at
 * debug, any other move throws `InvalidTransitionError`):
 *   created  → starting  (`create()`)
 *   starting → running   (the repo is ready and every child said `ready`; `running` carries the repo)
 *   created | starting | running → stopping (`stop()`; `stopping` carries the stop in flight)
 *   stopping → stopped   (every child has exited)
 * `create()` returns a running engine or throws; `stop()` returns the promise
 * already in flight and kills every child.
 */
import type { Logger } from 'pino';
import { StateMachine } from '../state-machine.ts';
import { AdaptorRepo } from '../runtime/adaptor-repo.ts';
import { endForAbort, endForEngineStopped, endForTimeout, endForUncaught } from '../runtime/run-ends.ts';
import type { RunEnd } from '../runtime/run-ends.ts';
import { AdaptorPreloads } from './adaptor-preloads.ts';
import { BusyRssWatch } from './busy-rss-watch.ts';
import { buildNpmEnv } from './child-env.ts';
import { codeReadPaths, permissionFlags } from './child-permissions.ts';
import { ChildPool } from './child-pool.ts';
import { CompiledJobs } from './compiled-jobs.ts';
import type { CompiledJobsStats } from './compiled-jobs.ts';
import type { BootGateStats } from './boot-gate.ts';
import { resolveEngineOptions } from './engine-options.ts';
import type { EngineOptions, ResolvedEngineOptions } from './engine-options.ts';
import { ENGINE_TRANSITIONS } from './engine-state.ts';
import type { EngineLifecycle, EngineState } from './engine-state.ts';
import type { PooledChild, PooledChildState } from './pooled-child.ts';
import { RunDispatch } from './run-dispatch.ts';
import { RunSession } from './run-session.ts';
import { readRuntimeVersion } from './runtime-version.ts';
import { buildChildBundle, buildThreadBundle } from './thread-bundle.ts';
import type { RunExecutor, RunOutcome, RunRequest } from './types.ts';

export type { EngineState } from './engine-state.ts';

export interface EngineStats {
  state: EngineState;
  activeRuns: number;
  compiledJobs: CompiledJobsStats;
  children: Array<{ id: number; pid: number | undefined; state: PooledChildState; runId: string | undefined; spareReady: boolean; bootWaiting: boolean }>;
  /** The boot gate (`maxConcurrentBoots`), when there is one. */
  boots: BootGateStats | undefined;
}

export class Engine implements RunExecutor {
  readonly #options: ResolvedEngineOptions;
  readonly #logger: Logger;
  readonly #state: StateMachine<EngineLifecycle>;
  readonly #pool: ChildPool;
  /** How to end each active run from outside (timeout, abort, RSS, stop): runId → interrupt. */
  readonly #interrupts = new Map<string, (end: RunEnd, hard: boolean) => void>();
  /** Samples busy children's RSS every `busyRssSampleIntervalMs`, only while runs are active. */
  readonly #busyRss: BusyRssWatch;
  /** Entry paths preloaded into spares: the configured adaptors, then the most recently used. */
  readonly #preloads: AdaptorPreloads;
  /** Compiled job text by what it was compiled from, shared by every child. */
  readonly #compiled = new CompiledJobs();
  /** Hands runs to children: resolves their adaptors, takes a child, posts. */
  readonly #dispatch: RunDispatch;

  private constructor(options: ResolvedEngineOptions) {
    this.#options = options;
    this.#logger = options.logger.child({ component: 'engine' });
    this.#state = new StateMachine<EngineLifecycle>({ name: 'engine', initial: { kind: 'created' }, transitions: ENGINE_TRANSITIONS, logger: this.#logger });
    this.#preloads = new AdaptorPreloads(options.recentAdaptors);
    this.#pool = new ChildPool({ options, logger: this.#logger, engineState: this.#state, preloadPaths: () => this.#preloads.paths() });
    this.#dispatch = new RunDispatch({ pool: this.#pool, compiled: this.#compiled, maxRunMemoryLimitMb: options.maxRunMemoryLimitMb, noteRecent: (paths) => this.#noteRecent(paths) });
    this.#busyRss = new BusyRssWatch({
      intervalMs: options.busyRssSampleIntervalMs,
      rssHeadroomMb: options.rssHeadroomMb,
      logger: this.#logger,
      children: () => this.#pool.children,
      isActive: (runId) => this.#interrupts.has(runId),
      kill: (runId, end) => this.#interrupts.get(runId)?.(end, true),
    });
  }

  /** Starts the pool (forks every child and waits for it) and returns a running engine. */
  static async create(options: EngineOptions): Promise<Engine> {
    const engine = new Engine(resolveEngineOptions(options));
    try {
      await engine.#start();
    } catch (error) {
      await engine.stop();
      throw error;
    }
    return engine;
  }

  get state(): EngineState {
    return this.#state.kind;
  }

  async #start(): Promise<void> {
    this.#state.to({ kind: 'starting' });
    const o = this.#options;
    const repo = await AdaptorRepo.create({
      repoDir: o.repoDir,
      allowList: o.adaptorAllowList,
      logger: this.#logger,
      npmCommand: o.npmCommand,
      env: buildNpmEnv(o.env),
      localAdaptors: o.localAdaptors,
      bundle: o.bundleCode,
    });
    const runtimeVersion = await readRuntimeVersion();
    const bundles = o.bundleCode ? await this.#buildBundles(repo.bundlesDir) : undefined;
    if (bundles) repo.writeCodeCache('run-thread', bundles.threadBundle);
    const execArgv = o.permissionModel
      ? permissionFlags([...codeReadPaths(), repo.repoDir, ...Object.values(o.localAdaptors), ...o.extraReadPaths])
      : [];
    await this.#pool.start({ threadEntry: bundles?.threadEntry, childEntry: bundles?.childEntry, execArgv });
    this.#state.to({ kind: 'running', repo, runtimeVersion });
    if (o.preloadAdaptors.length) this.#preload(o.preloadAdaptors, true);
  }

  /** The thread's and the child's bundles; none when either cannot be built (children then load the sources). */
  async #buildBundles(cacheDir: string): Promise<{ threadEntry: string; threadBundle: string; childEntry: string } | undefined> {
    const started = performance.now();
    try {
      const [thread, childEntry] = await Promise.all([buildThreadBundle(cacheDir), buildChildBundle(cacheDir)]);
      this.#logger.info({ path: thread.bundle, childPath: childEntry, ms: Math.round(performance.now() - started) }, 'run thread bundle ready');
      return { threadEntry: thread.entry, threadBundle: thread.bundle, childEntry };
    } catch (error) {
      this.#logger.warn({ err: error instanceof Error ? error.message : String(error) }, 'run thread not bundled, children load its sources');
      return undefined;
    }
  }

  async execute(request: RunRequest): Promise<RunOutcome> {
    const session = new RunSession(request, this.#logger);
    const started = performance.now();
    const running = this.#state.when('running');
    if (!running) {
      session.settle(endForEngineStopped());
      return session.done;
    }
    let child: PooledChild | undefined;
    /** The end of a stop waiting for the child to pass on what the run's thread still held. */
    let stopping: RunEnd | undefined;
    const interrupt = (end: RunEnd, hard: boolean): void => {
      if (session.settled) return;
      const holder = child?.runId === request.runId ? child : undefined;
      if (holder === undefined || hard) {
        session.settle(stopping ?? end);
        if (hard) holder?.abandonRun();
        return;
      }
      if (stopping !== undefined) return;
      // The run's first-turn reports may still be in its thread's mailbox (thread-mailbox.ts): the child
      // passes them on before it ends the thread, and only then does the stop settle the run.
      stopping = end;
      const bound = setTimeout(() => session.settle(end), this.#options.stopDrainMs);
      holder.stopRun(() => {
        clearTimeout(bound);
        session.settle(end);
      });
    };
    this.#interrupts.set(request.runId, interrupt);
    const onAbort = (): void => interrupt(endForAbort(request.signal?.reason), false);
    if (request.signal?.aborted) onAbort();
    // With its adaptors resolved before and a child free (an idle worker, nearly always), the run is
    // posted to its child within this call; what follows it here (the timeout, the memory watch) is
    // then off the way to the run's first line.
    let dispatched: Promise<void> | undefined;
    try {
      dispatched = this.#dispatch.dispatch(request, session, running, (c) => (child = c));
    } catch (error) {
      dispatched = Promise.reject(error);
    }
    const timer = setTimeout(() => interrupt(endForTimeout(request.limits.timeoutMs), false), request.limits.timeoutMs);
    if (!request.signal?.aborted) request.signal?.addEventListener('abort', onAbort, { once: true });
    this.#busyRss.watch();
    try {
      await dispatched;
    } catch (error) {
      if (!session.settled) {
        this.#logger.error({ runId: request.runId, err: error }, 'engine failed to dispatch run');
        session.settle(endForUncaught(error instanceof Error ? error.name : 'Error', error instanceof Error ? error.message : String(error)));
      }
    }
    const outcome = await session.done;
    clearTimeout(timer);
    request.signal?.removeEventListener('abort', onAbort);
    this.#interrupts.delete(request.runId);
    if (this.#interrupts.size === 0) this.#busyRss.unwatch();
    this.#busyRss.forget(request.runId);
    this.#logger.info({ runId: request.runId, reason: outcome.reason, errorType: outcome.errorType, ms: Math.round(performance.now() - started) }, 'run finished');
    return outcome;
  }

  #noteRecent(entryPaths: readonly string[]): void {
    if (this.#preloads.noteRecent(entryPaths)) this.#pool.preload(this.#preloads.paths());
  }

  #preload(specifiers: readonly string[], pin: boolean): void {
    const repo = this.#state.when('running')?.repo;
    if (!repo) return;
    for (const specifier of specifiers) {
      repo.resolve(specifier).then(
        (adaptor) => {
          if (pin) {
            this.#preloads.pin(specifier, adaptor.entryPath);
            this.#pool.preload(this.#preloads.paths());
          } else this.#noteRecent([adaptor.entryPath]);
        },
        (error: unknown) => this.#logger.warn({ adaptor: specifier, err: error }, 'adaptor preload failed'),
      );
    }
  }

  /** Hint that lanes will soon run these adaptors: install them and import them into warm spares. */
  preload(adaptors: readonly string[]): void {
    this.#preload(adaptors, false);
  }

  stats(): EngineStats {
    return {
      state: this.#state.kind,
      activeRuns: this.#interrupts.size,
      compiledJobs: this.#compiled.stats(),
      children: this.#pool.children.map((c) => ({ id: c.id, pid: c.pid, state: c.state, runId: c.runId, spareReady: c.spareReady, bootWaiting: c.bootWaiting })),
      boots: this.#pool.boots,
    };
  }

  /** The resident memory of the child running `runId`, as last sampled, in bytes. */
  runRssBytes(runId: string): number | undefined {
    return this.#busyRss.runRssBytes(runId);
  }

  /** Child processes alive now: the pool's size less the idle children retired (`idleChildTimeoutMs`). */
  childCount(): number {
    return this.#pool.children.length;
  }

  /** Process ids of the pool's children, e.g. to measure the tree's memory. */
  childPids(): number[] {
    return this.#pool.children.map((c) => c.pid).filter((p): p is number => p !== undefined);
  }

  /** Ends active runs (`kill`/`ShutdownError`) and kills every child. Idempotent. */
  stop(): Promise<void> {
    const current = this.#state.current;
    if (current.kind === 'stopping') return current.done;
    if (current.kind === 'stopped') return Promise.resolve();
    const { promise: done, resolve } = Promise.withResolvers<void>();
    this.#state.to({ kind: 'stopping', done });
    this.#pool.close();
    this.#busyRss.unwatch();
    for (const interrupt of [...this.#interrupts.values()]) interrupt(endForEngineStopped(), true);
    // A code cache still being written (adaptor-repo.ts) is finished first: its helper process is part of the engine.
    const cacheWrites = current.kind === 'running' ? current.repo.codeCachesWritten() : Promise.resolve();
    resolve(Promise.all([this.#pool.killAll(), cacheWrites]).then(() => void this.#state.to({ kind: 'stopped' })));
    return done;
  }
}
