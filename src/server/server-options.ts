/**
 * Options of the orchestration server, as the CLI hands them over: already
 * resolved from flags and env, with units in every name. `resolveServerOptions`
 * fills the defaults once so the rest of the server reads plain numbers.
 */
import type { Logger } from 'pino';
import { apiTokenProblem, isLoopbackHost } from '../protocol/index.ts';
import { RUN_TOKEN_MAX_AGE_MS, RUN_TOKEN_POOL_SIZE } from './run-token-pool.ts';
import { ServerError } from './server-error.ts';

/** Options of `LanesServer.create()`. Only `port`, `dbPath`, `secret` and `logger` are required. */
export interface ServerOptions {
  /** TCP port; 0 picks a free one (read it back from `server.port`). */
  port: number;
  /** Interface to bind; default `127.0.0.1`. */
  host?: string;
  /** SQLite file, or `:memory:`, or a `postgres://` URL (several servers on one database are one queue). */
  dbPath: string;
  /** The shared `WORKER_SECRET` that signs worker tokens (HS256). */
  secret: string;
  /**
   * Bearer tokens that open the JSON API (`/api/*`); several may be valid at
   * once (rotation). Without any, every `/api/*` request is refused (401),
   * and a server whose `host` is not a loopback address refuses to start.
   */
  apiTokens?: readonly string[];
  /**
   * PEM (or base64 PEM) of the RS256 key that signs run tokens. When absent it
   * is read from, or generated into, `<dbPath>.key.pem`; for `:memory:` it is
   * generated and kept in memory only.
   */
  privateKeyPem?: string;
  logger: Logger;
  /** A run on a heartbeating worker is lost once no heartbeat came for this long. Default 30 000. */
  leaseMs?: number;
  /**
   * When a worker's socket closes, the leases of its heartbeating runs drop to this: a worker that
   * reconnects and rejoins within it keeps its runs, a dead one's are lost this soon. Default 5 000.
   */
  reconnectGraceMs?: number;
  /** Heartbeat period advertised to workers in the `worker:queue` join reply. Default 10 000. */
  heartbeatIntervalMs?: number;
  /** Period of the lease sweep. Default 1 000 (the sweep must run at least every second). */
  sweepIntervalMs?: number;
  /** Run timeout when the plan sets no `options.run_timeout_ms`. Default 300 000. */
  runTimeoutMs?: number;
  /** Added to the run timeout for the run token's expiry and the non-heartbeat lease. Default 10 000. */
  graceMs?: number;
  /** Window that coalesces `work-available` pushes (leading edge plus one trailing push). Default 50. */
  workAvailableDebounceMs?: number;
  /**
   * Run identities (a run id with its token) made in idle time, so a submitted
   * run's claim need not sign (run-token-pool.ts): at most this many held at
   * once, pooled or waiting for their run's claim. Default 32; 0 signs every token at its claim.
   */
  presignedTokens?: number;
  /**
   * How long a token made ahead may wait, from its signing, for its run's claim
   * (half of it in the pool). Its `exp` is that much later. Default 60 000; at least 1 000.
   */
  presignedTokenMaxAgeMs?: number;
  /**
   * Offer `held_claims` (held-claims.ts): a claim that finds nothing waits for
   * work instead of being answered empty. Default true; false answers every
   * claim at once, as Lightning does (the worker then relies on `work-available`).
   */
  holdClaims?: boolean;
  /** Largest WebSocket frame accepted; a bigger one gets a `frame_too_large` error reply. Default 11 MB, like Lightning. */
  maxFrameBytes?: number;
  /**
   * Hard ceiling of a WebSocket frame: past it the socket is closed (1009)
   * without buffering the frame. Default twice `maxFrameBytes`; at least `maxFrameBytes`.
   */
  frameCeilingBytes?: number;
  /** Largest HTTP request body accepted. Default 10 MB. */
  maxBodyBytes?: number;
  /** `max_attempts` of a run submitted without one. Default 1 (no retry). */
  defaultMaxAttempts?: number;
  /** First retry delay; doubles per attempt. Default 1 000. */
  retryBackoffBaseMs?: number;
  /** Ceiling of the retry delay. Default 60 000. */
  retryBackoffMaxMs?: number;
  /** Longest `?wait=SECONDS` accepted on `POST /api/runs`. Default 300. */
  maxWaitSeconds?: number;
  /** A socket that sent nothing (not even a heartbeat) for this long is closed. Default 60 000. */
  socketIdleTimeoutMs?: number;
  /** Finished runs, their logs and dataclips are deleted this long after they finished. Default: kept for ever. */
  retainMs?: number | null;
  /** Period of the retention sweep. Default 60 000. */
  retentionIntervalMs?: number;
}

/** `ServerOptions` with every default applied. */
export interface ResolvedServerOptions {
  readonly port: number;
  readonly host: string;
  readonly dbPath: string;
  readonly secret: string;
  readonly apiTokens: readonly string[];
  readonly privateKeyPem: string | undefined;
  readonly logger: Logger;
  readonly reconnectGraceMs: number;
  readonly leaseMs: number;
  readonly heartbeatIntervalMs: number;
  readonly sweepIntervalMs: number;
  readonly runTimeoutMs: number;
  readonly graceMs: number;
  readonly workAvailableDebounceMs: number;
  readonly presignedTokens: number;
  readonly presignedTokenMaxAgeMs: number;
  readonly holdClaims: boolean;
  readonly maxFrameBytes: number;
  readonly frameCeilingBytes: number;
  readonly maxBodyBytes: number;
  readonly defaultMaxAttempts: number;
  readonly retryBackoffBaseMs: number;
  readonly retryBackoffMaxMs: number;
  readonly maxWaitSeconds: number;
  readonly socketIdleTimeoutMs: number;
  readonly retainMs: number | null;
  readonly retentionIntervalMs: number;
}

export const SERVER_DEFAULTS = Object.freeze({
  host: '127.0.0.1',
  leaseMs: 30_000,
  reconnectGraceMs: 5_000,
  heartbeatIntervalMs: 10_000,
  sweepIntervalMs: 1_000,
  runTimeoutMs: 300_000,
  graceMs: 10_000,
  workAvailableDebounceMs: 50,
  presignedTokens: RUN_TOKEN_POOL_SIZE,
  presignedTokenMaxAgeMs: RUN_TOKEN_MAX_AGE_MS,
  holdClaims: true,
  maxFrameBytes: 11 * 1024 * 1024,
  maxBodyBytes: 10 * 1024 * 1024,
  defaultMaxAttempts: 1,
  retryBackoffBaseMs: 1_000,
  retryBackoffMaxMs: 60_000,
  maxWaitSeconds: 300,
  socketIdleTimeoutMs: 60_000,
  retentionIntervalMs: 60_000,
});

function positive(name: string, value: number, allowZero = false): number {
  if (!Number.isFinite(value) || value < 0 || (!allowZero && value === 0)) {
    throw new ServerError('SERVER_OPTIONS', `server option ${name} must be a ${allowZero ? 'non-negative' : 'positive'} number, got ${value}`);
  }
  return value;
}

/** A pooled token is renewed every half of its age: shorter ages would keep an idle server signing. */
const MIN_PRESIGNED_TOKEN_MAX_AGE_MS = 1_000;

function atLeast(name: string, value: number, min: number): number {
  if (!Number.isFinite(value) || value < min) throw new ServerError('SERVER_OPTIONS', `server option ${name} must be a number of at least ${min}, got ${value}`);
  return value;
}

function integerAtLeastZero(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 0) throw new ServerError('SERVER_OPTIONS', `server option ${name} must be a non-negative integer, got ${value}`);
  return value;
}

/** Applies defaults and checks every number; throws `ServerError` (`SERVER_OPTIONS`) naming the option. */
export function resolveServerOptions(options: ServerOptions): ResolvedServerOptions {
  if (!Number.isInteger(options.port) || options.port < 0 || options.port > 65535) {
    throw new ServerError('SERVER_OPTIONS', `server option port must be an integer in 0..65535, got ${options.port}`);
  }
  if (typeof options.secret !== 'string' || options.secret.length === 0) {
    throw new ServerError('SERVER_OPTIONS', 'server option secret must be a non-empty string');
  }
  if (typeof options.dbPath !== 'string' || options.dbPath.length === 0) {
    throw new ServerError('SERVER_OPTIONS', 'server option dbPath must be a non-empty string');
  }
  const d = SERVER_DEFAULTS;
  const host = options.host ?? d.host;
  const apiTokens = Object.freeze([...(options.apiTokens ?? [])]);
  for (const token of apiTokens) {
    const problem = apiTokenProblem(token);
    if (problem) throw new ServerError('SERVER_OPTIONS', `server option apiTokens: a token ${problem}`);
  }
  if (apiTokens.length === 0 && !isLoopbackHost(host)) {
    throw new ServerError('SERVER_OPTIONS', `server option apiTokens is required to listen on ${host}, beyond loopback`);
  }
  const maxFrameBytes = positive('maxFrameBytes', options.maxFrameBytes ?? d.maxFrameBytes);
  const frameCeilingBytes = positive('frameCeilingBytes', options.frameCeilingBytes ?? 2 * maxFrameBytes);
  if (frameCeilingBytes < maxFrameBytes) {
    throw new ServerError('SERVER_OPTIONS', `server option frameCeilingBytes must be at least maxFrameBytes (${maxFrameBytes}), got ${frameCeilingBytes}`);
  }
  const resolved: ResolvedServerOptions = {
    port: options.port,
    host,
    dbPath: options.dbPath,
    secret: options.secret,
    apiTokens,
    privateKeyPem: options.privateKeyPem,
    logger: options.logger,
    leaseMs: positive('leaseMs', options.leaseMs ?? d.leaseMs),
    reconnectGraceMs: positive('reconnectGraceMs', options.reconnectGraceMs ?? d.reconnectGraceMs),
    heartbeatIntervalMs: positive('heartbeatIntervalMs', options.heartbeatIntervalMs ?? d.heartbeatIntervalMs),
    sweepIntervalMs: positive('sweepIntervalMs', Math.min(options.sweepIntervalMs ?? d.sweepIntervalMs, 1_000)),
    runTimeoutMs: positive('runTimeoutMs', options.runTimeoutMs ?? d.runTimeoutMs),
    graceMs: positive('graceMs', options.graceMs ?? d.graceMs, true),
    workAvailableDebounceMs: positive('workAvailableDebounceMs', options.workAvailableDebounceMs ?? d.workAvailableDebounceMs, true),
    presignedTokens: integerAtLeastZero('presignedTokens', options.presignedTokens ?? d.presignedTokens),
    presignedTokenMaxAgeMs: atLeast('presignedTokenMaxAgeMs', options.presignedTokenMaxAgeMs ?? d.presignedTokenMaxAgeMs, MIN_PRESIGNED_TOKEN_MAX_AGE_MS),
    holdClaims: options.holdClaims ?? d.holdClaims,
    maxFrameBytes,
    frameCeilingBytes,
    maxBodyBytes: positive('maxBodyBytes', options.maxBodyBytes ?? d.maxBodyBytes),
    defaultMaxAttempts: positive('defaultMaxAttempts', options.defaultMaxAttempts ?? d.defaultMaxAttempts),
    retryBackoffBaseMs: positive('retryBackoffBaseMs', options.retryBackoffBaseMs ?? d.retryBackoffBaseMs, true),
    retryBackoffMaxMs: positive('retryBackoffMaxMs', options.retryBackoffMaxMs ?? d.retryBackoffMaxMs, true),
    maxWaitSeconds: positive('maxWaitSeconds', options.maxWaitSeconds ?? d.maxWaitSeconds),
    socketIdleTimeoutMs: positive('socketIdleTimeoutMs', options.socketIdleTimeoutMs ?? d.socketIdleTimeoutMs),
    retainMs: options.retainMs === undefined || options.retainMs === null ? null : positive('retainMs', options.retainMs),
    retentionIntervalMs: positive('retentionIntervalMs', options.retentionIntervalMs ?? d.retentionIntervalMs),
  };
  return Object.freeze(resolved);
}

/** Delay before retry number `attempt` (1 = first retry): base · 2^(attempt-1), capped. */
export function retryDelayMs(options: Pick<ResolvedServerOptions, 'retryBackoffBaseMs' | 'retryBackoffMaxMs'>, attempt: number): number {
  const delay = options.retryBackoffBaseMs * 2 ** Math.max(0, attempt - 1);
  return Math.min(delay, options.retryBackoffMaxMs);
}
