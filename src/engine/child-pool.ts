/**
 * The engine's pool of pre-forked children: forking them, handing an idle one
 * to each run (or queueing the run until one frees up; `#pick` states which),
 * gating their thread boots (`boot-gate.ts`), replacing the dead,
 * and taking children out on purpose: after their run limit, over their idle
 * memory (`idle-recycling.ts`), or idle too long down to a warm minimum
 * (`idle-trim.ts`), forking again up to the pool size when runs need them.
 *
 * The pool has no state of its own: it reads the engine's (`engineState`, the
 * engine's `StateMachine`, read only), and the engine calls `close()` then
 * `killAll()` when it stops.
 */
import type { Logger } from 'pino';
import { LanesError } from '../errors/lanes-error.ts';
import { BootGate } from './boot-gate.ts';
import type { BootGateStats } from './boot-gate.ts';
import { buildChildEnv } from './child-env.ts';
import type { ResolvedEngineOptions } from './engine-options.ts';
import type { EngineState } from './engine-state.ts';
import { IdleRecycling } from './idle-recycling.ts';
import { IdleTrim } from './idle-trim.ts';
import { PooledChild } from './pooled-child.ts';
import type { PooledChildState } from './pooled-child.ts';
import { processRssBytes } from './process-rss.ts';

const RESPAWN_DELAY_MS = 1000;
/**
 * When a run takes the last warm child, the child that restores the warm
 * minimum is forked this much later: booting a Node process costs a few
 * hundred ms of CPU, which should not compete with the run reaching its first
 * line of job code on a small machine.
 */
const KEEP_WARM_DELAY_MS = 250;

export interface ChildPoolOptions {
  options: ResolvedEngineOptions;
  logger: Logger;
  /** The engine's state: children are replaced, retired and grown only while it runs. */
  engineState: { readonly kind: EngineState };
  /** The adaptor entry paths a new child's spares preload. */
  preloadPaths: () => string[];
}

/** What every child is started with, known once the engine has prepared it. */
export interface ChildSetup {
  /** The bundled thread code children load, when it could be built. */
  threadEntry: string | undefined;
  /** The bundled child process code (child-main.ts), when it could be built: children then never load TypeScript. */
  childEntry: string | undefined;
  /** Node flags of every child: the permission model's. */
  execArgv: readonly string[];
}

interface Waiter {
  urgent: boolean;
  resolve: (child: PooledChild) => void;
  reject: (error: unknown) => void;
  signal: AbortSignal;
}

export class ChildPool {
  readonly #options: ResolvedEngineOptions;
  readonly #logger: Logger;
  readonly #engine: { readonly kind: EngineState };
  readonly #preloadPaths: () => string[];
  readonly #children = new Set<PooledChild>();
  #nextChildId = 1;
  readonly #waiters: Waiter[] = [];
  /** Children taken out of the pool on purpose (recycled): their exit is not a death to replace. */
  readonly #retired = new WeakSet<PooledChild>();
  /** Idle children retired after a timeout, down to a warm minimum (`idle-trim.ts`). */
  readonly #idleTrim: IdleTrim<PooledChild>;
  readonly #recycling: IdleRecycling;
  #setup: ChildSetup = { threadEntry: undefined, childEntry: undefined, execArgv: [] };
  #sampler: NodeJS.Timeout | undefined;
  #sampling = false;
  #trimTimer: NodeJS.Timeout | undefined;
  #keepWarmTimer: NodeJS.Timeout | undefined;
  /** Thread boots, at most `maxConcurrentBoots` at a time; none without that option. */
  readonly #boots: BootGate<PooledChild> | undefined;

  constructor(options: ChildPoolOptions) {
    const o = options.options;
    this.#options = o;
    this.#logger = options.logger;
    this.#engine = options.engineState;
    this.#preloadPaths = options.preloadPaths;
    this.#idleTrim = new IdleTrim(o.idleChildTimeoutMs, Math.min(o.minWarmChildren, o.poolSize));
    this.#recycling = new IdleRecycling({ maxIdleChildRssMb: o.maxIdleChildRssMb, maxIdleChildGrowthMb: o.maxIdleChildGrowthMb, warmSpares: o.warmSpares });
    this.#boots =
      o.maxConcurrentBoots > 0 ? new BootGate({ limit: o.maxConcurrentBoots, urgentRank: 1, rank: (c) => this.#bootRank(c), grant: (c) => c.grantBoot() }) : undefined;
  }

  /** The boot gate's figures; undefined without a gate. */
  get boots(): BootGateStats | undefined {
    return this.#boots?.stats();
  }

  /** The children in the pool now, least recently handed out first. */
  get children(): readonly PooledChild[] {
    return [...this.#children];
  }

  /** Forks the whole pool and waits for every child, then starts the idle sampler and the idle trim. */
  async start(setup: ChildSetup): Promise<void> {
    this.#setup = setup;
    await Promise.all(Array.from({ length: this.#options.poolSize }, () => this.#spawn()));
    this.#sampler = setInterval(() => void this.#sampleIdle(), this.#options.rssSampleIntervalMs);
    this.#sampler.unref();
    if (this.#idleTrim.enabled) {
      this.#trimTimer = setInterval(() => this.#trimIdle(), Math.max(100, Math.min(this.#idleTrim.timeoutMs / 2, 5000)));
      this.#trimTimer.unref();
    }
  }

  /** Sends a new preload list to every child. */
  preload(paths: string[]): void {
    for (const child of this.#children) child.preload(paths);
  }

  /** Stops the timers and rejects every run still waiting for a child. */
  close(): void {
    clearInterval(this.#sampler);
    clearInterval(this.#trimTimer);
    clearTimeout(this.#keepWarmTimer);
    for (const waiter of this.#waiters.splice(0)) waiter.reject(new LanesError('ENGINE_STOPPED', 'the engine stopped'));
  }

  /** Kills every child. */
  async killAll(): Promise<void> {
    await Promise.all([...this.#children].map((c) => c.kill()));
  }

  #spawn(): Promise<void> {
    const o = this.#options;
    const child = new PooledChild({
      id: this.#nextChildId++,
      config: {
        spareMemoryLimitMb: o.runMemoryLimitMb,
        warmSpares: o.warmSpares,
        preload: this.#preloadPaths(),
        threadEntry: this.#setup.threadEntry,
        nice: o.childNice,
        backgroundNice: o.backgroundNice,
        firstTurnPollMs: o.firstTurnPollMs,
        bootPermits: this.#boots !== undefined,
      },
      heapMb: o.runMemoryLimitMb + o.childHeapHeadroomMb,
      entry: this.#setup.childEntry,
      env: buildChildEnv(o.env, o.envAllowList, o.childEnv),
      execArgv: this.#setup.execArgv,
      killGraceMs: o.killGraceMs,
      logger: this.#logger,
      onState: (c, state) => this.#onChildState(c, state),
      onBootRequest: (c) => this.#boots?.request(c),
      onBootEnded: (c) => this.#boots?.ended(c),
    });
    this.#children.add(child);
    return child.start();
  }

  /** Forks a child in place of one gone; if that fails, tries once more a little later. */
  #replace(): void {
    this.#spawn().catch((error: unknown) => {
      this.#logger.error({ err: error }, 'replacement child failed to start');
      setTimeout(() => {
        if (this.#engine.kind === 'running' && this.#children.size < this.#options.poolSize) void this.#spawn().catch(() => undefined);
      }, RESPAWN_DELAY_MS).unref();
    });
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
    if (state !== 'dead') return;
    this.#boots?.forget(child);
    if (this.#retired.has(child)) return;
    this.#children.delete(child);
    const engineState = this.#engine.kind;
    if (engineState !== 'running' && engineState !== 'starting') return;
    this.#logger.warn({ childId: child.id }, 'pooled child died, replacing it');
    this.#replace();
  }

  /**
   * Takes an idle child out of the pool, kills it and forks a fresh one. A
   * long-lived process slowly keeps memory (code caches, fragmentation,
   * adaptor modules of past spares): recycling bounds it without touching runs.
   */
  #retire(child: PooledChild, fields: Record<string, unknown>, message: string, replace = true): void {
    if (child.state !== 'idle' || this.#engine.kind !== 'running') return;
    child.reserve(); // synchronously: no run can take it from here on
    this.#retired.add(child);
    this.#children.delete(child);
    this.#logger.info({ childId: child.id, ...fields }, message);
    void child.kill();
    if (replace) this.#replace();
  }

  /** An idle child, reserved for the caller, if one is free now (`#pick`). */
  acquireNow(urgent = false): PooledChild | undefined {
    const pick = this.#pick(urgent);
    if (!pick) return undefined;
    this.#children.delete(pick);
    this.#children.add(pick);
    pick.reserve();
    this.#keepWarmLater();
    return pick;
  }

  /**
   * An idle child, reserved for the caller, now or when one frees up (urgent
   * runs ahead of the others). Rejects when `signal` aborts first.
   */
  acquire(signal: AbortSignal, urgent = false): Promise<PooledChild> {
    const now = this.acquireNow(urgent);
    if (now) return Promise.resolve(now);
    this.#growWarm(1);
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        urgent,
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
      const behind = urgent ? this.#waiters.findIndex((w) => !w.urgent) : -1;
      if (behind >= 0) this.#waiters.splice(behind, 0, waiter);
      else this.#waiters.push(waiter);
    });
  }

  /**
   * Which idle child a run takes, least recently used first within each kind
   * (docs/engine.md, "Pool"). An urgent run takes a child whose spare has
   * booted, else one whose boot runs, else one waiting for the boot gate.
   * Another run leaves `reservedWarmChildren` idle children to urgent runs,
   * booted ones first, then booting ones: it takes a booted child beyond
   * those, else a booting one (it waits for that boot, further along than
   * any other), else one waiting for the gate, else a reserved one, so that
   * no run waits while an idle child exists. Within each kind, children
   * whose spare booted at the urgent runs' priority (`spareForUrgent`) come
   * first for urgent runs and are the ones kept for them.
   */
  #pick(urgent: boolean): PooledChild | undefined {
    // Stable: least recently used first within each class.
    const idle = [...this.#children].filter((c) => c.state === 'idle').sort((a, b) => Number(b.spareForUrgent) - Number(a.spareForUrgent));
    const booted = idle.filter((c) => c.spareReady);
    const booting = idle.filter((c) => !c.spareReady && !c.bootWaiting);
    const waiting = idle.filter((c) => !c.spareReady && c.bootWaiting);
    if (urgent) return booted[0] ?? booting[0] ?? waiting[0];
    const keepBooted = Math.min(this.#options.reservedWarmChildren, booted.length);
    const keepBooting = Math.min(this.#options.reservedWarmChildren - keepBooted, booting.length);
    return booted[keepBooted] ?? booting[keepBooting] ?? waiting[0] ?? booting[0] ?? booted[0];
  }

  /**
   * The boot gate's order (lower first): a child holding an urgent run that
   * waits for its thread; an idle child whose last run was urgent (a pinned
   * lane's next spare: such a lane frees and refills a child per run, and
   * its boots must not wait behind the others'), or any idle child while
   * fewer idle children than `reservedWarmChildren` are booted or booting
   * (the urgent runs' reserve); these start at once. Then a child holding
   * another run; any other spare.
   */
  #bootRank(child: PooledChild): number {
    const urgent = child.urgentRun;
    if (urgent === true) return 0;
    if (child.state === 'idle') {
      if (child.lastRunUrgent) return 1;
      let warm = 0;
      for (const c of this.#children) if (c.state === 'idle' && (c.spareReady || (!c.bootWaiting && c !== child))) warm += 1;
      if (warm < this.#options.reservedWarmChildren) return 1;
    }
    return urgent === false ? 2 : 3;
  }

  /** Retires children idle past the timeout, down to the warm minimum. */
  #trimIdle(): void {
    if (this.#engine.kind !== 'running') return;
    for (const child of this.#idleTrim.toRetire([...this.#children], (c) => c.state === 'idle', Date.now())) {
      this.#retire(child, { idleMs: this.#idleTrim.timeoutMs }, 'retiring idle pooled child', false);
    }
  }

  /**
   * With idle children retired, the pool may be below its size: fork again,
   * up to it, so that `needed` waiting runs get a child and, now that runs
   * come, `warmChildrenWhenActive` stay idle for the next ones (the fast
   * lane's next run, a lane that refills at once).
   */
  #growWarm(needed: number): void {
    if (!this.#idleTrim.enabled || this.#engine.kind !== 'running') return;
    let ready = 0;
    for (const child of this.#children) if (child.state === 'idle' || child.state === 'starting') ready += 1;
    let missing = Math.max(needed + this.#waiters.length - ready, this.#options.warmChildrenWhenActive - ready);
    while (missing > 0 && this.#children.size < this.#options.poolSize) {
      missing -= 1;
      this.#spawn().catch((error: unknown) => this.#logger.error({ err: error }, 'pooled child failed to start'));
    }
  }

  /** Restores the warm minimum a little after a run took a warm child (`KEEP_WARM_DELAY_MS`). */
  #keepWarmLater(): void {
    if (!this.#idleTrim.enabled || this.#keepWarmTimer !== undefined) return;
    this.#keepWarmTimer = setTimeout(() => {
      this.#keepWarmTimer = undefined;
      this.#growWarm(0);
    }, KEEP_WARM_DELAY_MS);
    this.#keepWarmTimer.unref();
  }

  /** Samples idle children that have run something, and recycles those `IdleRecycling` condemns. */
  async #sampleIdle(): Promise<void> {
    if (this.#sampling) return;
    this.#sampling = true;
    try {
      for (const child of [...this.#children]) {
        if (child.state !== 'idle' || child.runsFinished === 0 || child.pid === undefined) continue;
        const idleRss = await processRssBytes(child.pid);
        if (idleRss === undefined || child.state !== 'idle') continue;
        const verdict = this.#recycling.judge(child, idleRss);
        if (verdict) this.#retire(child, verdict.fields, verdict.message);
      }
    } finally {
      this.#sampling = false;
    }
  }
}
