/**
 * The public API of the `lanes` package, for programs that embed a worker or
 * a server instead of running the `lanes` command (docs/api.md):
 *
 *   import { createServer, createWorker } from 'lanes';
 *
 * Everything exported here is supported; anything reached by a deeper path
 * (`lanes/src/...`) is internal and may change without notice.
 */
import pino from 'pino';
import type { Logger } from 'pino';
import { resolveWorkerConfig, WORKER_OPTIONS } from './config/worker-config.ts';
import { ConfigError } from './errors/config-error.ts';
import type { EngineOverrides, Worker } from './worker/index.ts';
import { Worker as WorkerClass } from './worker/index.ts';
import type { RunExecutor } from './engine/index.ts';
import { LanesServer } from './server/index.ts';
import type { ServerOptions } from './server/index.ts';

/**
 * `lanes worker` options by flag name, as on the command line:
 * `{ lightning: 'ws://127.0.0.1:4000/worker', secret: '…', workloops: 'fast_lane:1 manual>*:4', port: 0 }`.
 * Numbers may be given as numbers; `lanes worker --help` and docs/configuration.md list them all.
 */
export type WorkerFlags = Readonly<Record<string, string | number | boolean | undefined>>;

export interface CreateWorkerOptions {
  /** The worker's options, validated exactly as `lanes worker` validates its flags. */
  flags: WorkerFlags;
  /** `WORKER_*` variables to read options from when a flag is absent (pass `process.env` to behave like the CLI). None by default. */
  env?: Readonly<Record<string, string | undefined>>;
  /** A pino logger; by default the worker logs nothing. */
  logger?: Logger;
  /** Executes runs instead of the built-in engine of child processes (a test double, another sandbox). */
  executor?: RunExecutor;
  /** Options of the built-in engine beyond the flags: the children's environment, local adaptors. */
  engine?: EngineOverrides;
}

export interface CreateWorkerResult {
  worker: Worker;
  /** Lane warnings (a repeated queue, two lanes with one chain): not errors, worth a log line. */
  warnings: readonly string[];
}

/**
 * Resolves the options and creates a worker, not yet connected: call
 * `await worker.start()`, and `await worker.stop()` to drain and stop it.
 * A bad option throws `ConfigError` naming the flag (or variable) and the value.
 */
export async function createWorker(options: CreateWorkerOptions): Promise<CreateWorkerResult> {
  const known = new Set(WORKER_OPTIONS.map((spec) => spec.flag));
  for (const [name, value] of Object.entries(options.flags)) {
    // The CLI refuses an unknown flag; a typo here must not fall back to a default silently.
    if (!known.has(name)) throw new ConfigError(`--${name}`, { kind: 'flag', name }, value === undefined ? undefined : String(value), 'is not a lanes worker option');
  }
  const { config, warnings } = resolveWorkerConfig(options.flags, options.env ?? {});
  const worker = await WorkerClass.create({
    config,
    logger: options.logger ?? pino({ level: 'silent' }),
    ...(options.executor ? { executor: options.executor } : {}),
    ...(options.engine ? { engine: options.engine } : {}),
  });
  return { worker, warnings };
}

/** The server's options; `logger` is optional here (silent by default). See docs/server.md. */
export type CreateServerOptions = Omit<ServerOptions, 'logger'> & { logger?: Logger };

/**
 * Opens the database (`dbPath`, or `:memory:`) and creates the orchestration
 * server, not yet listening: call `await server.start()` (then `server.url`
 * and `server.workerUrl` say where it is), and `await server.stop()`.
 */
export async function createServer(options: CreateServerOptions): Promise<LanesServer> {
  return LanesServer.create({ ...options, logger: options.logger ?? pino({ level: 'silent' }) });
}

export { Worker } from './worker/index.ts';
export { InvalidTransitionError } from './state-machine.ts';
export type { LaneSnapshot, WorkerState, ConnectionState, ServerFeatures, EngineOverrides } from './worker/index.ts';
export { LanesServer, ServerError } from './server/index.ts';
export type { LanesServerState, ServerOptions } from './server/index.ts';
export { parseWorkloops, formatWorkloops } from './lanes/parse-workloops.ts';
export type { LaneSpec, ParsedWorkloops } from './lanes/parse-workloops.ts';
export { WorkloopsError } from './lanes/workloops-error.ts';
export { resolveWorkerConfig, WORKER_OPTIONS } from './config/worker-config.ts';
export type { WorkerConfig } from './config/worker-config.ts';
export type { RunExecutor, RunRequest, RunOutcome, RunLimits, EngineEvent } from './engine/index.ts';
export { LanesApiClient } from './client/lanes-api-client.ts';
export type { RunRecord, SubmitRunBody } from './client/lanes-api-client.ts';
export { ApiError, InvalidRequestError, ServerUnreachableError, UnexpectedResponseError } from './client/api-error.ts';
export { LanesError } from './errors/lanes-error.ts';
export { ConfigError } from './errors/config-error.ts';
export * from './protocol/index.ts';
