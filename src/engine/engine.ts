/**
 * The engine: a pool of pre-forked child processes that execute runs, each in
 * a fresh memory-limited worker thread, under a timeout, with the child's RSS
 * policed from outside. It implements `RunExecutor` for the worker.
 *
 * States: created → starting → running → stopping → stopped.
 * `create()` returns a running engine or throws; `stop()` returns the promise
 * already in flight and kills every child.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import { LanesError } from '../errors/lanes-error.ts';
import { AdaptorRepo } from '../runtime/adaptor-repo.ts';
import type { ResolvedAdaptor } from '../runtime/adaptor-repo.ts';
import type { ExecutionAdaptor, ExecutionRequest } from '../runtime/execution-request.ts';
import { buildChildEnv, buildNpmEnv } from './child-env.ts';
import { codeReadPaths, permissionFlags } from './child-permissions.ts';
import { resolveEngineOptions } from './engine-options.ts';
import type { EngineOptions, ResolvedEngineOptions } from './engine-options.ts';
import { CompiledJobs } from './compiled-jobs.ts';
import type { CompiledJobsStats } from './compiled-jobs.ts';
import { IdleTrim } from './idle-trim.ts';
import { PooledChild } from './pooled-child.ts';
import type { PooledChildState } from './pooled-child.ts';
import { processRssBytes } from './process-rss.ts';
import {
  endForAbort,
  endForAdaptorError,
  endForEngineStopped,
  endForOom,
  endForPlanError,
  endForTimeout,
  endForUncaught,
} from '../runtime/run-ends.ts';
import type { RunEnd } from '../runtime/run-ends.ts';
import { RunSession } from './run-session.ts';
import { buildThreadBundle } from './thread-bundle.ts';
import type { RunExecutor, RunOutcome, RunRequest } from './types.ts';

export type EngineState = 'created' | 'starting' | 'running' | 'stopping' | 'stopped';

const TRANSITIONS: Record<EngineState, readonly EngineState[]> = {
  created: ['starting'],
  starting: ['running', 'stopping'],
  running: ['stopping'],
  stopping: ['stopped'],
  stopped: [],
};

export interface EngineStats {
  state: EngineState;
  activeRuns: number;
  compiledJobs: CompiledJobsStats;
  children: Array<{ id: number; pid: number | undefined; state: PooledChildState; runId: string | undefined; spareReady: boolean }>;
}

const MB = 1024 * 1024;
const RESPAWN_DELAY_MS = 1000;

export class Engine implements RunExecutor {
  readonly #options: ResolvedEngineOptions;
  readonly #logger: Logger;
  #state: EngineState = 'created';
  #repo: AdaptorRepo | undefined;
  #runtimeVersion = 'unknown';
  readonly #children = new Set<PooledChild>();
  #nextChildId = 1;
  readonly #waiters: Array<{ resolve: (child: PooledChild) => void; reject: (error: unknown) => void; signal: AbortSignal }> = [];
  /** How to end each active run from outside (timeout, abort, RSS, stop): runId → interrupt. */
  readonly #interrupts = new Map<string, (end: RunEnd, hard: boolean) => void>();
  #sampler: NodeJS.Timeout | undefined;
  /** Samples busy children's RSS every `busyRssSampleIntervalMs`, only while runs are active. */
  #busySampler: NodeJS.Timeout | undefined;
  #sampleBusyInFlight = false;
  /** Idle children retired after a timeout, down to a warm minimum (`idle-trim.ts`). */
  readonly #idleTrim: IdleTrim<PooledChild>;
  #trimTimer: NodeJS.Timeout | undefined;
  /** The last resident memory sampled for each active run's child: runId → bytes (for metrics). */
  readonly #runRss = new Map<string, number>();
  #sampling = false;
  /** Each child's first settled idle RSS, after its first run: what later growth is measured against. */
  readonly #idleBaselines = new WeakMap<PooledChild, number>();
  /** Entry paths preloaded into spares: the configured adaptors, then the most recently used. */
  readonly #pinned = new Map<string, string>();
  #recent: string[] = [];
  #stopping: Promise<void> | undefined;
  /** Children taken out of the pool on purpose (recycled): their exit is not a death to replace. */
  readonly #retired = new WeakSet<PooledChild>();
  /** The bundled thread code children load, when it could be built. */
  #threadEntry: string | undefined;
  /** Compiled job text by what it was compiled from, shared by every child. */
  readonly #compiled = new CompiledJobs();
  /** Node flags of every child: the permission model's, computed once. */
  #childExecArgv: readonly string[] = [];

  private constructor(options: ResolvedEngineOptions) {
    this.#options = options;
    this.#logger = options.logger.child({ component: 'engine' });
    this.#idleTrim = new IdleTrim(options.idleChildTimeoutMs, Math.min(options.minWarmChildren, options.poolSize));
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
    return this.#state;
  }

  #setState(next: EngineState): void {
    if (!TRANSITIONS[this.#state].includes(next)) {
      throw new LanesError('INVALID_ENGINE_TRANSITION', `engine cannot go from ${this.#state} to ${next}`);
    }
    this.#logger.info({ from: this.#state, to: next }, 'engine state changed');
    this.#state = next;
  }

  async #start(): Promise<void> {
    this.#setState('starting');
    const o = this.#options;
    this.#repo = await AdaptorRepo.create({
      repoDir: o.repoDir,
      allowList: o.adaptorAllowList,
      logger: this.#logger,
      npmCommand: o.npmCommand,
      env: buildNpmEnv(o.env),
      localAdaptors: o.localAdaptors,
      bundle: o.bundleCode,
    });
    this.#runtimeVersion = await readRuntimeVersion();
    if (o.bundleCode) this.#threadEntry = await this.#buildThreadBundle(this.#repo.bundlesDir);
    if (o.permissionModel) {
      this.#childExecArgv = permissionFlags([...codeReadPaths(), this.#repo.repoDir, ...Object.values(o.localAdaptors), ...o.extraReadPaths]);
    }
    await Promise.all(Array.from({ length: o.poolSize }, () => this.#spawn()));
    this.#sampler = setInterval(() => void this.#sampleRss(), o.rssSampleIntervalMs);
    this.#sampler.unref();
    if (this.#idleTrim.enabled) {
      this.#trimTimer = setInterval(() => this.#trimIdle(), Math.max(100, Math.min(this.#idleTrim.timeoutMs / 2, 5000)));
      this.#trimTimer.unref();
    }
    this.#setState('running');
    if (o.preloadAdaptors.length) this.#preload(o.preloadAdaptors, true);
  }

  async #buildThreadBundle(cacheDir: string): Promise<string | undefined> {
    const started = performance.now();
    try {
      const filePath = await buildThreadBundle(cacheDir);
      this.#logger.info({ path: filePath, ms: Math.round(performance.now() - started) }, 'run thread bundle ready');
      return filePath;
    } catch (error) {
      this.#logger.warn({ err: error instanceof Error ? error.message : String(error) }, 'run thread not bundled, children load its sources');
      return undefined;
    }
  }

  #spawn(): Promise<void> {
    const o = this.#options;
    const child = new PooledChild({
      id: this.#nextChildId++,
      config: { spareMemoryLimitMb: o.runMemoryLimitMb, warmSpares: o.warmSpares, preload: this.#preloadPaths(), threadEntry: this.#threadEntry, nice: o.childNice },
      heapMb: o.runMemoryLimitMb + o.childHeapHeadroomMb,
      env: buildChildEnv(o.env, o.envAllowList, o.childEnv),
      execArgv: this.#childExecArgv,
      killGraceMs: o.killGraceMs,
      logger: this.#logger,
      onState: (c, state) => this.#onChildState(c, state),
    });
    this.#children.add(child);
    return child.start();
  }

  #onChildState(child: PooledChild, state: PooledChildState): void {
    if (state === 'idle') {
      this.#idleTrim.noteIdle(child, Date.now());
      if (child.runsFinished >= this.#options.maxRunsPerChild) {
        this.#retire(child, { runs: child.runsFinished }, 'recycling pooled child after its run limit');
        return;
      }
      const waiter = this.#waiters.shift();
      if (waiter) {
        this.#children.delete(child);
        this.#children.add(child);
        child.reserve();
        waiter.resolve(child);
      }
      return;
    }
    if (state !== 'dead' || this.#retired.has(child)) return;
    this.#children.delete(child);
    if (this.#state !== 'running' && this.#state !== 'starting') return;
    this.#logger.warn({ childId: child.id }, 'pooled child died, replacing it');
    this.#spawn().catch((error: unknown) => {
      this.#logger.error({ err: error }, 'replacement child failed to start');
      setTimeout(() => {
        if (this.#state === 'running' && this.#children.size < this.#options.poolSize) void this.#spawn().catch(() => undefined);
      }, RESPAWN_DELAY_MS).unref();
    });
  }

  /**
   * Takes an idle child out of the pool, kills it and forks a fresh one. A
   * long-lived process slowly keeps memory (code caches, fragmentation,
   * adaptor modules of past spares): recycling bounds it without touching runs.
   */
  #retire(child: PooledChild, fields: Record<string, unknown>, message: string, replace = true): void {
    if (child.state !== 'idle' || this.#state !== 'running') return;
    child.reserve(); // synchronously: no run can take it from here on
    this.#retired.add(child);
    this.#children.delete(child);
    this.#logger.info({ childId: child.id, ...fields }, message);
    void child.kill();
    if (!replace) return;
    this.#spawn().catch((error: unknown) => {
      this.#logger.error({ err: error }, 'replacement child failed to start');
      setTimeout(() => {
        if (this.#state === 'running' && this.#children.size < this.#options.poolSize) void this.#spawn().catch(() => undefined);
      }, RESPAWN_DELAY_MS).unref();
    });
  }

  /** An idle child, reserved for the caller, now or when one frees up. Rejects when `signal` aborts first. */
  #acquire(signal: AbortSignal): Promise<PooledChild> {
    // An idle child whose warm spare has booted first, else the least recently
    // used idle child (its spare has had the longest to boot).
    let pick: PooledChild | undefined;
    for (const child of this.#children) {
      if (child.state !== 'idle') continue;
      if (child.spareReady) {
        pick = child;
        break;
      }
      pick ??= child;
    }
    if (pick) {
      this.#children.delete(pick);
      this.#children.add(pick);
      pick.reserve();
      this.#growWarm(0);
      return Promise.resolve(pick);
    }
    this.#growWarm(1);
    return new Promise((resolve, reject) => {
      const waiter = {
        resolve: (child: PooledChild) => {
          signal.removeEventListener('abort', onAbort);
          resolve(child);
        },
        reject,
        signal,
      };
      const onAbort = (): void => {
        const i = this.#waiters.indexOf(waiter);
        if (i >= 0) this.#waiters.splice(i, 1);
        reject(signal.reason);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.#waiters.push(waiter);
    });
  }

  /** Retires children idle past the timeout, down to the warm minimum. */
  #trimIdle(): void {
    if (this.#state !== 'running') return;
    for (const child of this.#idleTrim.toRetire([...this.#children], (c) => c.state === 'idle', Date.now())) {
      this.#retire(child, { idleMs: this.#idleTrim.timeoutMs }, 'retiring idle pooled child', false);
    }
  }

  /**
   * With idle children retired, the pool may be below its size: fork again,
   * up to it, so that `needed` waiting runs get a child and at least the warm
   * minimum stays idle for the next run (the fast lane's).
   */
  #growWarm(needed: number): void {
    if (!this.#idleTrim.enabled || this.#state !== 'running') return;
    let ready = 0;
    for (const child of this.#children) if (child.state === 'idle' || child.state === 'starting') ready += 1;
    let missing = Math.max(needed + this.#waiters.length - ready, this.#idleTrim.minWarm - ready);
    while (missing > 0 && this.#children.size < this.#options.poolSize) {
      missing -= 1;
      this.#spawn().catch((error: unknown) => this.#logger.error({ err: error }, 'pooled child failed to start'));
    }
  }

  async execute(request: RunRequest): Promise<RunOutcome> {
    const logger = this.#logger.child({ runId: request.runId });
    const session = new RunSession(request, logger);
    const started = performance.now();
    if (this.#state !== 'running') {
      session.settle(endForEngineStopped());
      return session.done;
    }
    let child: PooledChild | undefined;
    const interrupt = (end: RunEnd, hard: boolean): void => {
      if (!session.settle(end)) return;
      if (child && child.runId === request.runId) {
        if (hard) child.abandonRun();
        else child.stopRun();
      }
    };
    this.#interrupts.set(request.runId, interrupt);
    this.#watchBusy();
    const timer = setTimeout(() => interrupt(endForTimeout(request.limits.timeoutMs), false), request.limits.timeoutMs);
    const onAbort = (): void => interrupt(endForAbort(request.signal?.reason), false);
    if (request.signal?.aborted) onAbort();
    else request.signal?.addEventListener('abort', onAbort, { once: true });

    try {
      await this.#dispatch(request, session, (c) => (child = c));
    } catch (error) {
      if (!session.settled) {
        logger.error({ err: error }, 'engine failed to dispatch run');
        session.settle(endForUncaught(error instanceof Error ? error.name : 'Error', error instanceof Error ? error.message : String(error)));
      }
    }
    const outcome = await session.done;
    clearTimeout(timer);
    request.signal?.removeEventListener('abort', onAbort);
    this.#interrupts.delete(request.runId);
    if (this.#interrupts.size === 0) this.#unwatchBusy();
    this.#runRss.delete(request.runId);
    logger.info({ reason: outcome.reason, errorType: outcome.errorType, ms: Math.round(performance.now() - started) }, 'run finished');
    return outcome;
  }

  async #dispatch(request: RunRequest, session: RunSession, setChild: (child: PooledChild) => void): Promise<void> {
    const { plan, limits } = request;
    const nodeIds = new Set([...plan.jobs.map((j) => j.id), ...plan.triggers.map((t) => t.id)]);
    const versions: Record<string, string> = { node: process.version, '@openfn/runtime': this.#runtimeVersion };
    session.setVersions(versions);
    if (!nodeIds.has(plan.starting_node_id)) {
      session.settle(endForPlanError(`starting node ${plan.starting_node_id} is not a job or trigger of the plan`));
      return;
    }

    let adaptors: Map<string, ResolvedAdaptor>;
    try {
      adaptors = await this.#resolveAdaptors(plan.jobs.map((j) => j.adaptor).filter((a): a is string => Boolean(a)));
    } catch (error) {
      session.settle(endForAdaptorError(error instanceof Error ? error.message : String(error)));
      return;
    }
    for (const a of adaptors.values()) versions[a.name] = a.version;
    this.#noteRecent([...adaptors.values()]);
    if (session.settled) return;

    let child: PooledChild;
    try {
      child = await this.#acquire(session.settledSignal);
    } catch {
      return; // settled while waiting for a free child
    }
    if (session.settled) {
      child.release();
      return;
    }
    setChild(child);

    const toExecution = (a: ResolvedAdaptor): ExecutionAdaptor => ({ specifier: a.specifier, name: a.name, version: a.version, entryPath: a.entryPath });
    const compileKeys = new Map<string, string>();
    const execution: ExecutionRequest = {
      runId: request.runId,
      jobs: plan.jobs.map((job) => {
        const adaptor = job.adaptor ? adaptors.get(job.adaptor) : undefined;
        const key = CompiledJobs.key(job.body, job.name ?? job.id, adaptor?.entryPath ?? null);
        compileKeys.set(job.id, key);
        const compiled = this.#compiled.get(key);
        const out: ExecutionRequest['jobs'][number] = {
          id: job.id,
          body: job.body,
          adaptor: adaptor ? toExecution(adaptor) : null,
          credentialId: job.credential_id ?? null,
        };
        if (job.name) out.name = job.name;
        if (compiled !== undefined) out.compiled = compiled;
        return out;
      }),
      triggerIds: plan.triggers.map((t) => t.id),
      edges: plan.edges,
      startingNodeId: plan.starting_node_id,
      input: request.input ?? {},
      payloadLimitMb: limits.payloadLimitMb,
      logPayloadLimitMb: limits.logPayloadLimitMb,
      statePropsToRemove: limits.statePropsToRemove,
    };
    if (plan.options?.job_log_level) execution.jobLogLevel = plan.options.job_log_level;
    if (plan.options?.sanitize) execution.sanitize = plan.options.sanitize;

    const runId = request.runId;
    child.run(runId, execution, Math.min(limits.memoryLimitMb, this.#options.maxRunMemoryLimitMb), {
      // run-start goes out when the thread has the run, not here: before it lie the hop to the child and the thread.
      onStarted: (timestamp) => session.start(timestamp),
      onEvent: (event) => session.emit(event),
      onCompiled: (jobId, code) => {
        const key = compileKeys.get(jobId);
        if (key !== undefined) this.#compiled.set(key, code);
      },
      onEnd: (end) => session.settle(end),
      onCredentialRequest: (requestId, credentialId) => {
        request.fetchCredential(credentialId).then(
          (body) => child.replyCredential(runId, requestId, { ok: true, body }),
          (error: unknown) => child.replyCredential(runId, requestId, { ok: false, message: error instanceof Error ? error.message : String(error) }),
        );
      },
    });
  }

  async #resolveAdaptors(specifiers: string[]): Promise<Map<string, ResolvedAdaptor>> {
    const repo = this.#repo;
    if (!repo) throw new LanesError('ENGINE_NOT_STARTED', 'the engine has no adaptor repo');
    const unique = [...new Set(specifiers)];
    const resolved = await Promise.all(unique.map((s) => repo.resolve(s)));
    return new Map(unique.map((s, i) => [s, resolved[i] as ResolvedAdaptor]));
  }

  #preloadPaths(): string[] {
    return [...new Set([...this.#pinned.values(), ...this.#recent])];
  }

  #noteRecent(adaptors: ResolvedAdaptor[]): void {
    const before = this.#preloadPaths().join('\n');
    for (const a of adaptors) this.#recent = [a.entryPath, ...this.#recent.filter((p) => p !== a.entryPath)];
    this.#recent = this.#recent.slice(0, this.#options.recentAdaptors);
    const after = this.#preloadPaths();
    if (after.join('\n') !== before) for (const child of this.#children) child.preload(after);
  }

  #preload(specifiers: readonly string[], pin: boolean): void {
    const repo = this.#repo;
    if (!repo) return;
    for (const specifier of specifiers) {
      repo.resolve(specifier).then(
        (adaptor) => {
          if (pin) {
            this.#pinned.set(specifier, adaptor.entryPath);
            const paths = this.#preloadPaths();
            for (const child of this.#children) child.preload(paths);
          } else this.#noteRecent([adaptor]);
        },
        (error: unknown) => this.#logger.warn({ adaptor: specifier, err: error }, 'adaptor preload failed'),
      );
    }
  }

  /** Hint that lanes will soon run these adaptors: install them and import them into warm spares. */
  preload(adaptors: readonly string[]): void {
    if (this.#state === 'running') this.#preload(adaptors, false);
  }

  async #sampleRss(): Promise<void> {
    if (this.#sampling) return;
    this.#sampling = true;
    try {
      for (const child of [...this.#children]) {
        if (child.state === 'idle' && child.runsFinished > 0 && child.pid !== undefined) {
          const idleRss = await processRssBytes(child.pid);
          if (idleRss === undefined || child.state !== 'idle') continue;
          if (idleRss > this.#options.maxIdleChildRssMb * MB) {
            this.#retire(child, { rssMb: Math.round(idleRss / MB), limitMb: this.#options.maxIdleChildRssMb }, 'recycling pooled child over its idle memory limit');
            continue;
          }
          // Only a settled child (its next spare booted) is comparable with its baseline.
          if (this.#options.warmSpares && !child.spareReady) continue;
          const baseline = this.#idleBaselines.get(child);
          if (baseline === undefined) this.#idleBaselines.set(child, idleRss);
          else if (idleRss > baseline + this.#options.maxIdleChildGrowthMb * MB) {
            this.#retire(child, { rssMb: Math.round(idleRss / MB), baselineMb: Math.round(baseline / MB) }, 'recycling pooled child grown past its idle baseline');
          }
          continue;
        }
      }
    } finally {
      this.#sampling = false;
    }
  }

  /**
   * Busy children are sampled far more often than idle ones: memory outside
   * the V8 heap (Buffers) is caught only here, and a run allocating as fast as
   * it can passes its ceiling by what it allocates between two samples
   * (docs/memory.md, "the hard per-run cap"). The timer runs only while runs are active.
   */
  #watchBusy(): void {
    if (this.#busySampler !== undefined || this.#state !== 'running') return;
    this.#busySampler = setInterval(() => void this.#sampleBusy(), this.#options.busyRssSampleIntervalMs);
    this.#busySampler.unref();
  }

  #unwatchBusy(): void {
    clearInterval(this.#busySampler);
    this.#busySampler = undefined;
  }

  async #sampleBusy(): Promise<void> {
    if (this.#sampleBusyInFlight) return;
    this.#sampleBusyInFlight = true;
    try {
      for (const child of [...this.#children]) {
        const runId = child.runId;
        const limitMb = child.runMemoryLimitMb;
        if (child.state !== 'busy' || runId === undefined || limitMb === undefined || child.pid === undefined) continue;
        const rss = await processRssBytes(child.pid);
        if (rss !== undefined && child.runId === runId && this.#interrupts.has(runId)) this.#runRss.set(runId, rss);
        const ceilingMb = limitMb + this.#options.rssHeadroomMb;
        if (rss === undefined || rss <= ceilingMb * MB || child.runId !== runId) continue;
        this.#logger.warn({ runId, childId: child.id, rssMb: Math.round(rss / MB), ceilingMb }, 'run process over its memory ceiling, killing it');
        // Memory is running away: no grace period, the child is SIGKILLed at once.
        this.#interrupts.get(runId)?.(endForOom(`its process reached ${Math.round(rss / MB)} MB RSS, over ${ceilingMb} MB`), true);
      }
    } finally {
      this.#sampleBusyInFlight = false;
    }
  }

  stats(): EngineStats {
    return {
      state: this.#state,
      activeRuns: this.#interrupts.size,
      compiledJobs: this.#compiled.stats(),
      children: [...this.#children].map((c) => ({ id: c.id, pid: c.pid, state: c.state, runId: c.runId, spareReady: c.spareReady })),
    };
  }

  /** The resident memory of the child running `runId`, as last sampled, in bytes. */
  runRssBytes(runId: string): number | undefined {
    return this.#runRss.get(runId);
  }

  /** Process ids of the pool's children, e.g. to measure the tree's memory. */
  childPids(): number[] {
    return [...this.#children].map((c) => c.pid).filter((p): p is number => p !== undefined);
  }

  /** Ends active runs (`kill`/`ShutdownError`) and kills every child. Idempotent. */
  stop(): Promise<void> {
    if (this.#stopping) return this.#stopping;
    this.#stopping = (async () => {
      if (this.#state === 'stopped') return;
      if (this.#state === 'created') this.#state = 'starting';
      this.#setState('stopping');
      clearInterval(this.#sampler);
      clearInterval(this.#trimTimer);
      this.#unwatchBusy();
      for (const waiter of this.#waiters.splice(0)) waiter.reject(new LanesError('ENGINE_STOPPED', 'the engine stopped'));
      for (const interrupt of [...this.#interrupts.values()]) interrupt(endForEngineStopped(), true);
      await Promise.all([...this.#children].map((c) => c.kill()));
      this.#setState('stopped');
    })();
    return this.#stopping;
  }
}

async function readRuntimeVersion(): Promise<string> {
  try {
    const entry = fileURLToPath(import.meta.resolve('@openfn/runtime'));
    const pkg = JSON.parse(await readFile(path.join(path.dirname(entry), '..', 'package.json'), 'utf8')) as { version?: string };
    return pkg.version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}
