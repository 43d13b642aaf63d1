/**
 * The worker's configuration: one typed, frozen object resolved from flags
 * and `WORKER_*` env variables (named as OpenFn's ws-worker names them, so a
 * deployment keeps its environment). Every name carries its unit.
 */
import { homedir, hostname } from 'node:os';
import { join } from 'node:path';
import { ConfigError, describeSource } from '../errors/config-error.ts';
import { defaultWorkloops, MAX_LANE_CAPACITY, parseWorkloops } from '../lanes/parse-workloops.ts';
import type { LaneSpec } from '../lanes/parse-workloops.ts';
import { WorkloopsError } from '../lanes/workloops-error.ts';
import { MemoryPlanError, planMemory } from '../lanes/memory-plan.ts';
import type { MemoryPlan, MemoryPlanInput } from '../lanes/memory-plan.ts';
import type { OptionSpec } from './option-spec.ts';
import {
  parseBackoff,
  parseBoolean,
  parseList,
  parseNice,
  parseLogFormat,
  parseLogLevel,
  parseNonNegativeInteger,
  parsePort,
  parsePositiveInteger,
  parsePositiveNumber,
  parseSecondsToMs,
  parseWebSocketUrls,
} from './parse-value.ts';
import type { LogFormat, LogLevelName } from './parse-value.ts';
import { RawConfig } from './raw-config.ts';
import type { EnvValues, FlagValues } from './raw-config.ts';

export const DEFAULT_LIGHTNING_URL = 'ws://localhost:4000/worker';
export const DEFAULT_CAPACITY = 5;

/** Every option of `lanes worker`, in the order `--help` and the docs list them. */
export const WORKER_OPTIONS: readonly OptionSpec[] = [
  { flag: 'lightning', alias: 'l', env: 'WORKER_LIGHTNING_SERVICE_URL', type: 'string', defaultText: DEFAULT_LIGHTNING_URL, describe: 'WebSocket endpoint of the orchestration server; several (comma-separated, or the flag repeated) to fail over between servers', repeatable: true },
  { flag: 'secret', alias: 's', env: 'WORKER_SECRET', type: 'string', describe: 'Shared secret that signs the worker token (required)', secret: true },
  { flag: 'workloops', env: 'WORKER_WORKLOOPS', type: 'string', defaultText: 'manual>*:5', describe: 'Lanes: "QUEUES:CAPACITY ..." e.g. "fast_lane:1 manual>*:4"; excludes --capacity' },
  { flag: 'capacity', env: 'WORKER_CAPACITY', type: 'string', describe: 'Shorthand for one lane "manual>*:N"; excludes --workloops' },
  { flag: 'run-memory', env: 'WORKER_MAX_RUN_MEMORY_MB', type: 'string', defaultText: '500', describe: "Memory limit of a run whose plan declares none (run_memory_limit_mb), in MB" },
  { flag: 'max-memory', env: 'WORKER_MAX_MEMORY_MB', type: 'string', defaultText: 'none (Σ capacity × run memory for runs)', describe: 'Memory ceiling of the worker and all its engine children, in MB, split across the lanes (docs/memory.md)' },
  { flag: 'max-run-duration-seconds', env: 'WORKER_MAX_RUN_DURATION_SECONDS', type: 'string', defaultText: '300', describe: 'Kill a run after this many seconds (TimeoutError)' },
  { flag: 'payload-memory', env: 'WORKER_MAX_PAYLOAD_MB', type: 'string', defaultText: '10', describe: 'Largest step output sent to the server, in MB' },
  { flag: 'log-payload-memory', env: 'WORKER_MAX_LOG_PAYLOAD_MB', type: 'string', defaultText: '1', describe: 'Largest log line sent to the server, in MB (longer ones are truncated)' },
  { flag: 'backoff', env: 'WORKER_BACKOFF', type: 'string', defaultText: '1/10', describe: 'Claim backoff MIN/MAX in seconds after an empty claim' },
  { flag: 'port', alias: 'p', env: 'WORKER_PORT', type: 'string', defaultText: '2222', describe: 'Port of the health and metrics HTTP server (0 picks a free one)' },
  { flag: 'lightning-public-key', env: 'WORKER_LIGHTNING_PUBLIC_KEY', type: 'string', describe: "Server's public key (PEM, or base64 PEM) to verify run tokens", secret: true },
  { flag: 'log', env: 'WORKER_LOG_LEVEL', type: 'string', defaultText: 'info', describe: 'Log level: fatal, error, warn, info, debug, trace or silent' },
  { flag: 'log-format', env: 'WORKER_LOG_FORMAT', type: 'string', defaultText: 'json (pretty on a terminal)', describe: 'Log format: json or pretty' },
  { flag: 'repo-dir', env: 'WORKER_REPO_DIR', type: 'string', defaultText: '~/.cache/lanes/repo', describe: 'Where adaptors are installed' },
  { flag: 'message-timeout', env: 'WORKER_MESSAGE_TIMEOUT_SECONDS', type: 'string', defaultText: '30', describe: 'Seconds to wait for the reply to a run event' },
  { flag: 'claim-timeout', env: 'WORKER_CLAIM_TIMEOUT_SECONDS', type: 'string', defaultText: '3600', describe: 'Seconds to wait for the reply to a claim' },
  { flag: 'batch-logs', env: 'WORKER_BATCH_LOGS', type: 'boolean', defaultText: 'false', describe: 'Send job logs in batches (run:batch_logs)' },
  { flag: 'state-props-to-remove', env: 'WORKER_STATE_PROPS_TO_REMOVE', type: 'string', defaultText: 'configuration,response', describe: 'Comma-separated state keys removed from every step output' },
  { flag: 'shutdown-timeout-seconds', env: 'WORKER_SHUTDOWN_TIMEOUT_SECONDS', type: 'string', defaultText: '60', describe: 'On SIGTERM, how long active runs may finish before they are killed' },
  { flag: 'name', env: 'WORKER_NAME', type: 'string', defaultText: 'the host name', describe: 'Display name sent with claims' },
  { flag: 'adaptor-allowlist', env: 'WORKER_ADAPTOR_ALLOWLIST', type: 'string', defaultText: '@openfn/language-*', describe: 'Comma-separated package patterns that may be installed as adaptors' },
  { flag: 'spare-children', env: 'WORKER_SPARE_CHILDREN', type: 'string', defaultText: '1', describe: 'Engine child processes beyond the capacity, each holding a warm thread for whichever lane frees next' },
  { flag: 'idle-child-timeout-seconds', env: 'WORKER_IDLE_CHILD_TIMEOUT_SECONDS', type: 'string', defaultText: '30 (0 keeps every child warm)', describe: 'Retire an engine child idle this long, keeping warm one per slot of the lanes without "*" (at least one); the others, spares included, are forked again when runs come' },
  { flag: 'preload-adaptors', env: 'WORKER_PRELOAD_ADAPTORS', type: 'string', describe: 'Comma-separated adaptors (name@version) to keep warm in spare threads' },
  { flag: 'child-nice', env: 'WORKER_CHILD_NICE', type: 'string', defaultText: '10', describe: 'Nice value (0-19) of the engine children that run jobs, so the worker and the server come first when jobs fill the CPU' },
  { flag: 'background-nice', env: 'WORKER_BACKGROUND_NICE', type: 'string', defaultText: '19', describe: 'Nice value (--child-nice to 19) of the runs of lanes with "*" and of spare-thread boots after them, so an urgent run of a lane that pins its queues comes first' },
  { flag: 'bundle-code', env: 'WORKER_BUNDLE_CODE', type: 'boolean', defaultText: 'true', describe: 'Load run threads and each adaptor from one esbuild bundle (false: file by file, about twice the CPU per run)' },
];

/** The resolved worker configuration. Frozen; safe to share. */
export interface WorkerConfig {
  /** The first of `lightningUrls`. */
  readonly lightningUrl: string;
  /** Every server URL, in the order the worker tries them when one is gone. */
  readonly lightningUrls: readonly string[];
  readonly secret: string;
  readonly workloops: readonly Readonly<LaneSpec>[];
  /** Sum of the lanes' capacities. */
  readonly capacity: number;
  readonly runMemoryLimitMb: number;
  /** `--max-memory`: the ceiling of the worker process and its children, or null (no ceiling). */
  readonly maxMemoryMb: number | null;
  /** --max-memory, or without it Σ lane memory (capacity × run memory): what the runs may use at most. */
  readonly memoryCeilingMb: number;
  /** How the ceiling splits: worker, children, each lane (lanes/memory-plan.ts). */
  readonly memory: Readonly<MemoryPlan>;
  readonly maxRunDurationMs: number;
  readonly payloadLimitMb: number;
  readonly logPayloadLimitMb: number;
  readonly backoff: Readonly<{ minMs: number; maxMs: number }>;
  readonly port: number;
  readonly lightningPublicKey: string | null;
  readonly logLevel: LogLevelName;
  readonly logFormat: LogFormat;
  readonly repoDir: string;
  readonly messageTimeoutMs: number;
  readonly claimTimeoutMs: number;
  readonly batchLogs: boolean;
  readonly statePropsToRemove: readonly string[];
  readonly shutdownTimeoutMs: number;
  readonly workerName: string;
  readonly adaptorAllowList: readonly string[];
  readonly preloadAdaptors: readonly string[];
  /** Engine children beyond the capacity: the pool is capacity + spareChildren. */
  readonly spareChildren: number;
  /** Retire an engine child idle this long (0: never), down to the strict lanes' slots (at least one). Default 30 s. */
  readonly idleChildTimeoutMs: number;
  /** Run threads load their code and adaptors from bundles (engine `bundleCode`). */
  readonly bundleCode: boolean;
  /** Nice value of the engine children (engine `childNice`). */
  readonly childNice: number;
  /** Nice value of the runs that are not urgent and the spares booted after them (engine `backgroundNice`). */
  readonly backgroundNice: number;
}

export interface ResolvedWorkerConfig {
  config: WorkerConfig;
  /** Lane warnings (duplicate names, duplicate chains) for the caller to log. */
  warnings: string[];
}

export interface ResolveContext {
  /** Whether stdout is a terminal: picks the default log format. */
  isTty?: boolean;
}

/**
 * How long an engine child may idle before it is retired (docs/memory.md, "The warm pool"):
 * long enough that a lane running a run every few seconds keeps its children, short enough
 * that a worker 60 s without runs holds only its pinned lanes' warm children.
 */
export const DEFAULT_IDLE_CHILD_TIMEOUT_MS = 30_000;

/** Resolves, validates and freezes the worker config; throws `ConfigError`. */
export function resolveWorkerConfig(flags: FlagValues, env: EnvValues, context: ResolveContext = {}): ResolvedWorkerConfig {
  const raw = new RawConfig(WORKER_OPTIONS, flags, env);

  const secretRaw = raw.get('secret');
  if (!secretRaw) throw new ConfigError('--secret/WORKER_SECRET', { kind: 'default' }, undefined, 'is required: set --secret or WORKER_SECRET');

  const { lanes, warnings } = resolveLanes(raw);
  const capacity = lanes.reduce((sum, lane) => sum + lane.capacity, 0);
  const runMemoryLimitMb = raw.read('run-memory', parsePositiveInteger, 500);
  const maxMemoryMb = raw.read<number | null>('max-memory', parsePositiveInteger, null);
  const spareChildren = raw.read('spare-children', parseSpareChildren, 1);
  const memory = resolveMemory(raw, { lanes, runMemoryMb: runMemoryLimitMb, maxMemoryMb, spareChildren });
  const cacheHome = env['XDG_CACHE_HOME'] && env['XDG_CACHE_HOME'].trim() !== '' ? env['XDG_CACHE_HOME'] : join(homedir(), '.cache');

  const lightningUrls = Object.freeze(raw.read('lightning', parseWebSocketUrls, [DEFAULT_LIGHTNING_URL]));
  const childNice = raw.read('child-nice', parseNice, 10);
  const config: WorkerConfig = {
    lightningUrl: lightningUrls[0] ?? DEFAULT_LIGHTNING_URL,
    lightningUrls,
    secret: secretRaw.value,
    workloops: lanes.map((lane) => Object.freeze({ ...lane, queues: Object.freeze([...lane.queues]) as string[] })),
    capacity,
    runMemoryLimitMb,
    maxMemoryMb,
    memoryCeilingMb: memory.ceilingMb,
    memory,
    maxRunDurationMs: raw.read('max-run-duration-seconds', parseSecondsToMs, 300_000),
    payloadLimitMb: raw.read('payload-memory', parsePositiveNumber, 10),
    logPayloadLimitMb: raw.read('log-payload-memory', parsePositiveNumber, 1),
    backoff: Object.freeze(raw.read('backoff', parseBackoff, { minMs: 1000, maxMs: 10_000 })),
    port: raw.read('port', parsePort, 2222),
    lightningPublicKey: raw.read('lightning-public-key', parsePublicKey, null),
    logLevel: raw.read('log', parseLogLevel, 'info'),
    logFormat: raw.read('log-format', parseLogFormat, context.isTty ? 'pretty' : 'json'),
    repoDir: raw.read('repo-dir', (value) => value.trim(), join(cacheHome, 'lanes', 'repo')),
    messageTimeoutMs: raw.read('message-timeout', parseSecondsToMs, 30_000),
    claimTimeoutMs: raw.read('claim-timeout', parseSecondsToMs, 3_600_000),
    batchLogs: raw.read('batch-logs', parseBoolean, false),
    statePropsToRemove: Object.freeze(raw.read('state-props-to-remove', parseList, ['configuration', 'response'])),
    shutdownTimeoutMs: raw.read('shutdown-timeout-seconds', parseSecondsToMs, 60_000),
    workerName: raw.read('name', (value) => value.trim(), hostname()),
    adaptorAllowList: Object.freeze(raw.read('adaptor-allowlist', parseList, ['@openfn/language-*'])),
    preloadAdaptors: Object.freeze(raw.read('preload-adaptors', parseList, [])),
    spareChildren,
    idleChildTimeoutMs: raw.read('idle-child-timeout-seconds', parseNonNegativeSecondsToMs, DEFAULT_IDLE_CHILD_TIMEOUT_MS),
    bundleCode: raw.read('bundle-code', parseBoolean, true),
    childNice,
    backgroundNice: resolveBackgroundNice(raw, childNice),
  };
  return { config: Object.freeze(config), warnings };
}

/** `--background-nice` may not give background work more priority than urgent runs' `--child-nice`. */
function resolveBackgroundNice(raw: RawConfig, childNice: number): number {
  const value = raw.read('background-nice', parseNice, 19);
  const option = raw.get('background-nice');
  if (option !== undefined && value < childNice) {
    throw new ConfigError('--background-nice/WORKER_BACKGROUND_NICE', option.source, option.value, `must be at least --child-nice (${childNice}): background runs may not come before urgent ones`);
  }
  return Math.max(value, childNice);
}

/** `--workloops` and `--capacity` exclude each other, whichever of flag or env each comes from. */
function resolveLanes(raw: RawConfig): { lanes: LaneSpec[]; warnings: string[] } {
  const workloops = raw.get('workloops');
  const capacity = raw.get('capacity');
  if (workloops && capacity) {
    throw new ConfigError(
      '--workloops/WORKER_WORKLOOPS',
      workloops.source,
      workloops.value,
      `cannot be combined with --capacity/WORKER_CAPACITY (${describeSource(capacity.source)} ${JSON.stringify(capacity.value)}): use one of them`,
    );
  }
  if (capacity) {
    const n = raw.read('capacity', parseLaneCapacity, DEFAULT_CAPACITY);
    return { lanes: defaultWorkloops(n), warnings: [] };
  }
  if (workloops) {
    try {
      return parseWorkloops(workloops.value);
    } catch (error) {
      if (error instanceof WorkloopsError) {
        throw new ConfigError('--workloops/WORKER_WORKLOOPS', workloops.source, workloops.value, `lane ${error.message}`);
      }
      throw error;
    }
  }
  return { lanes: defaultWorkloops(DEFAULT_CAPACITY), warnings: [] };
}

/** The memory plan; a ceiling the lanes cannot live in is a configuration error naming the numbers. */
function resolveMemory(raw: RawConfig, input: MemoryPlanInput): MemoryPlan {
  try {
    const plan = planMemory(input);
    return Object.freeze({ ...plan, lanes: plan.lanes.map((lane) => Object.freeze(lane)) });
  } catch (error) {
    if (!(error instanceof MemoryPlanError)) throw error;
    const option = raw.get('max-memory');
    if (option === undefined) throw new ConfigError('--workloops/WORKER_WORKLOOPS', raw.get('workloops')?.source ?? { kind: 'default' }, raw.get('workloops')?.value, error.message);
    throw new ConfigError('--max-memory/WORKER_MAX_MEMORY_MB', option.source, option.value, error.message);
  }
}

function parsePublicKey(value: string): string {
  const trimmed = value.trim();
  if (trimmed.startsWith('-----BEGIN')) return trimmed;
  const decoded = Buffer.from(trimmed, 'base64').toString('utf8').trim();
  if (!decoded.startsWith('-----BEGIN')) throw new Error('must be a PEM public key, or one encoded in base64');
  return decoded;
}

/** The config as `--dry-run` prints it: secrets as "[redacted]". */
export function redactWorkerConfig(config: WorkerConfig): Record<string, unknown> {
  return {
    ...config,
    secret: '[redacted]',
    lightningPublicKey: config.lightningPublicKey === null ? null : '[redacted]',
  };
}

/** `--capacity N` is one lane `manual>*:N`: bounded like any lane, as the server bounds a lane of the join. */
function parseLaneCapacity(value: string): number {
  const n = parsePositiveInteger(value);
  if (n > MAX_LANE_CAPACITY) throw new Error(`must be at most ${MAX_LANE_CAPACITY} (the most slots of one lane)`);
  return n;
}

/**
 * Engine children beyond the capacity. Each holds a warm thread (about 90 MB with
 * language-common), so more than this is a typo rather than a plan.
 */
export const MAX_SPARE_CHILDREN = 64;

function parseNonNegativeSecondsToMs(value: string): number {
  return value.trim() === '0' ? 0 : parseSecondsToMs(value);
}

function parseSpareChildren(value: string): number {
  const n = parseNonNegativeInteger(value);
  if (n > MAX_SPARE_CHILDREN) throw new Error(`must be at most ${MAX_SPARE_CHILDREN}`);
  return n;
}
