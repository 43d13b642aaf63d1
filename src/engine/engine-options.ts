import { FIRST_TURN_POLL_MS } from './thread-mailbox.ts';
import type { Logger } from 'pino';
import { LanesError } from '../errors/lanes-error.ts';
import { DEFAULT_ADAPTOR_ALLOW_LIST } from '../runtime/adaptor-repo.ts';
import { DEFAULT_CHILD_ENV_ALLOW_LIST } from './child-env.ts';

/** Options of `Engine.create`. Every size is in MB and every duration in ms, as the names say. */
export interface EngineOptions {
  /** Child processes kept in the pool: the worker's capacity. */
  poolSize: number;
  /** Default heap of a run's thread; spare threads are booted with it. Default 500. */
  runMemoryLimitMb?: number;
  /**
   * The largest limit a run may have (a lane's memory, with a ceiling). A run
   * whose limit is above the spares' boots a thread of its own. Default `runMemoryLimitMb`.
   */
  maxRunMemoryLimitMb?: number;
  /** Where adaptors are installed. */
  repoDir: string;
  /** Adaptor package names that may be installed (`*` wildcard). Default `@openfn/language-*`. */
  adaptorAllowList?: readonly (string | RegExp)[];
  /** Adaptors to install at start and keep imported in warm spares. */
  preloadAdaptors?: readonly string[];
  logger: Logger;
  /** A busy child is killed (`kill`/`OOMError`) when its RSS passes the run's limit plus this. Default 256. */
  rssHeadroomMb?: number;
  /** Added to the run limit for the child's own `--max-old-space-size`. Default 128. */
  childHeapHeadroomMb?: number;
  /** How often idle children's RSS is sampled (recycling). Default 250. */
  rssSampleIntervalMs?: number;
  /**
   * How often a busy child's RSS is sampled while runs are active: the bound
   * on how far a run allocating outside the heap passes its ceiling before it
   * is killed. Default 20.
   */
  busyRssSampleIntervalMs?: number;
  /** How long a stopped run's thread may take to go before its child is SIGKILLed. Default 1000. */
  killGraceMs?: number;
  /** Keep a booted spare thread per child. Default true. */
  warmSpares?: boolean;
  /** Recently used adaptors kept preloaded in spares, besides `preloadAdaptors`. Default 4. */
  recentAdaptors?: number;
  /** The environment the children's allow-list picks from. Default `process.env` (the CLI should pass its own). */
  env?: Readonly<Record<string, string | undefined>>;
  /** Variable names children inherit. Default PATH, HOME, TMPDIR, locale, TZ, CA and proxy settings. */
  envAllowList?: readonly string[];
  /** Extra variables set in every child. `WORKER_*`/`LANES_*` are refused. */
  childEnv?: Readonly<Record<string, string>>;
  /** Package name → local directory or tarball, installed instead of the registry (tests, offline sites). */
  localAdaptors?: Readonly<Record<string, string>>;
  /** The npm executable. Default `npm`. */
  npmCommand?: string;
  /**
   * Start children under Node's permission model (`child-permissions.ts`): no child processes, no
   * file writes, reads only of code and adaptors. Default true.
   */
  permissionModel?: boolean;
  /** More paths children may read under the permission model (e.g. an adaptor's data files). */
  extraReadPaths?: readonly string[];
  /**
   * Retire a child idle for this long, down to `minWarmChildren`; the pool
   * forks again, up to `poolSize`, when runs need children. 0 keeps every
   * child warm. Default 0.
   */
  idleChildTimeoutMs?: number;
  /** Children kept warm however long they idle (the worker: its strict lanes' slots). Default `poolSize`. */
  minWarmChildren?: number;
  /**
   * Children kept idle and ready for the next run while runs come: when a run
   * takes a warm child, the pool forks again (up to `poolSize`) until this
   * many are idle or starting; idle ones retire again after
   * `idleChildTimeoutMs`. The worker: its strict lanes' slots plus the
   * spares, so a lane that frees and refills at once finds a booted thread.
   * Default `minWarmChildren`.
   */
  warmChildrenWhenActive?: number;
  /**
   * Booted idle children kept for urgent runs (`RunRequest.urgent`): another
   * run takes one of them only when no other idle child is left, and waits
   * for a booting child's thread instead. The worker: the slots of its lanes
   * that pin their queues. Default 0.
   */
  reservedWarmChildren?: number;
  /**
   * Thread boots (spares, and the threads of runs that found none) children
   * run at once; the others wait their turn, urgent runs' and the reserve's
   * first (`boot-gate.ts`). 0: no gate, each child boots its next spare as
   * its run ends. The worker: one less than the cores (at least 1) when it
   * has lanes that pin their queues, else 0. Default 0.
   */
  maxConcurrentBoots?: number;
  /** A child is replaced, once idle, after this many runs (bounds slow growth of a long-lived process). Default 500. */
  maxRunsPerChild?: number;
  /** A child that has run at least once is replaced when its idle RSS passes this. Default 512. */
  maxIdleChildRssMb?: number;
  /**
   * A child is replaced when its idle RSS (spare booted) has grown this much
   * over its first such sample: thread churn leaves memory behind, and this
   * bounds it relative to what the child's adaptors need. Default 96.
   */
  maxIdleChildGrowthMb?: number;
  /**
   * Load run threads from one esbuild bundle of their code, and installed
   * adaptors from one bundle each (`runtime/bundle.ts`): a third of the CPU
   * per run. False loads both file by file. Default true.
   */
  bundleCode?: boolean;
  /**
   * Nice value (0-19) of every child process and the run threads it starts:
   * when jobs fill the CPU, the worker's own work (claims, run events,
   * heartbeats) and a server on the same machine come first, so an urgent
   * run is claimed and started without waiting behind job code or the boot
   * of a spare thread. Jobs keep the same priority among themselves. 0 leaves
   * the children at the worker's priority. Default 10.
   */
  childNice?: number;
  /**
   * Nice value (`childNice` to 19) of the threads of runs that are not
   * urgent (`RunRequest.urgent`), and of the spares booted after them:
   * when long runs end together and their children boot new spares, those
   * boots and the next long runs yield to an urgent run's thread, which
   * keeps `childNice`. The spares kept for urgent runs (a child's first,
   * and the next after an urgent run) boot at `childNice`. Default 19.
   */
  backgroundNice?: number;
  /**
   * How often a child reads its run thread's mailbox while the run's first
   * turn lasts (thread-mailbox.ts): how soon a job that computes from its
   * first line shows its start. Default 20 ms; tests set it long to see the
   * other reads alone.
   */
  firstTurnPollMs?: number;
  /**
   * How long a run stopped from outside (time-out, cancel) waits for its
   * child to pass on what its thread still held (`run-drained`) before it
   * settles without it. Default 100: a cancel is reported within about that
   * even when the child is slow to answer.
   */
  stopDrainMs?: number;
}

export interface ResolvedEngineOptions {
  poolSize: number;
  runMemoryLimitMb: number;
  maxRunMemoryLimitMb: number;
  repoDir: string;
  adaptorAllowList: readonly (string | RegExp)[];
  preloadAdaptors: readonly string[];
  logger: Logger;
  rssHeadroomMb: number;
  childHeapHeadroomMb: number;
  rssSampleIntervalMs: number;
  busyRssSampleIntervalMs: number;
  killGraceMs: number;
  warmSpares: boolean;
  recentAdaptors: number;
  env: Readonly<Record<string, string | undefined>>;
  envAllowList: readonly string[];
  childEnv: Readonly<Record<string, string>>;
  localAdaptors: Readonly<Record<string, string>>;
  npmCommand: string;
  permissionModel: boolean;
  extraReadPaths: readonly string[];
  idleChildTimeoutMs: number;
  minWarmChildren: number;
  warmChildrenWhenActive: number;
  reservedWarmChildren: number;
  maxConcurrentBoots: number;
  maxRunsPerChild: number;
  maxIdleChildRssMb: number;
  maxIdleChildGrowthMb: number;
  bundleCode: boolean;
  childNice: number;
  backgroundNice: number;
  firstTurnPollMs: number;
  stopDrainMs: number;
}

export class EngineOptionsError extends LanesError {
  constructor(message: string) {
    super('INVALID_ENGINE_OPTIONS', message);
  }
}

function positiveInt(name: string, value: number): number {
  if (!Number.isInteger(value) || value <= 0) throw new EngineOptionsError(`engine option ${name} must be a positive integer, got ${value}`);
  return value;
}

function nonNegativeInt(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 0) throw new EngineOptionsError(`engine option ${name} must be a non-negative integer, got ${value}`);
  return value;
}

function niceValue(name: string, value: number, least = 0): number {
  if (!Number.isInteger(value) || value < least || value > 19) throw new EngineOptionsError(`engine option ${name} must be an integer from ${least} to 19, got ${value}`);
  return value;
}

export function resolveEngineOptions(options: EngineOptions): ResolvedEngineOptions {
  return Object.freeze({
    poolSize: positiveInt('poolSize', options.poolSize),
    runMemoryLimitMb: positiveInt('runMemoryLimitMb', options.runMemoryLimitMb ?? 500),
    maxRunMemoryLimitMb: positiveInt('maxRunMemoryLimitMb', Math.max(options.maxRunMemoryLimitMb ?? 0, options.runMemoryLimitMb ?? 500)),
    repoDir: options.repoDir,
    adaptorAllowList: options.adaptorAllowList ?? DEFAULT_ADAPTOR_ALLOW_LIST,
    preloadAdaptors: options.preloadAdaptors ?? [],
    logger: options.logger,
    rssHeadroomMb: positiveInt('rssHeadroomMb', options.rssHeadroomMb ?? 256),
    childHeapHeadroomMb: positiveInt('childHeapHeadroomMb', options.childHeapHeadroomMb ?? 128),
    rssSampleIntervalMs: positiveInt('rssSampleIntervalMs', options.rssSampleIntervalMs ?? 250),
    busyRssSampleIntervalMs: positiveInt('busyRssSampleIntervalMs', options.busyRssSampleIntervalMs ?? 20),
    killGraceMs: positiveInt('killGraceMs', options.killGraceMs ?? 1000),
    warmSpares: options.warmSpares ?? true,
    recentAdaptors: options.recentAdaptors ?? 4,
    env: options.env ?? process.env,
    envAllowList: options.envAllowList ?? DEFAULT_CHILD_ENV_ALLOW_LIST,
    childEnv: options.childEnv ?? {},
    localAdaptors: options.localAdaptors ?? {},
    npmCommand: options.npmCommand ?? 'npm',
    permissionModel: options.permissionModel ?? true,
    extraReadPaths: options.extraReadPaths ?? [],
    idleChildTimeoutMs: nonNegativeInt('idleChildTimeoutMs', options.idleChildTimeoutMs ?? 0),
    minWarmChildren: positiveInt('minWarmChildren', options.minWarmChildren ?? options.poolSize),
    warmChildrenWhenActive: positiveInt('warmChildrenWhenActive', Math.max(options.warmChildrenWhenActive ?? 0, options.minWarmChildren ?? options.poolSize)),
    reservedWarmChildren: nonNegativeInt('reservedWarmChildren', options.reservedWarmChildren ?? 0),
    maxConcurrentBoots: nonNegativeInt('maxConcurrentBoots', options.maxConcurrentBoots ?? 0),
    maxRunsPerChild: positiveInt('maxRunsPerChild', options.maxRunsPerChild ?? 500),
    maxIdleChildRssMb: positiveInt('maxIdleChildRssMb', options.maxIdleChildRssMb ?? 512),
    maxIdleChildGrowthMb: positiveInt('maxIdleChildGrowthMb', options.maxIdleChildGrowthMb ?? 96),
    bundleCode: options.bundleCode ?? true,
    childNice: niceValue('childNice', options.childNice ?? 10),
    backgroundNice: niceValue('backgroundNice', options.backgroundNice ?? 19, options.childNice ?? 10),
    firstTurnPollMs: positiveInt('firstTurnPollMs', options.firstTurnPollMs ?? FIRST_TURN_POLL_MS),
    stopDrainMs: positiveInt('stopDrainMs', options.stopDrainMs ?? 100),
  });
}
