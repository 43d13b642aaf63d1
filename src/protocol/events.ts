/**
 * Names of everything that crosses the wire between a worker and an
 * orchestration server (PROTOCOL.md). Both sides import these constants so a
 * typo is a type error, not a silent timeout.
 */

/** The Lightning worker API version this package speaks. */
export const API_VERSION = '1.2';

/** Phoenix framework topics and events. */
export const PHX_JOIN = 'phx_join';
export const PHX_LEAVE = 'phx_leave';
export const PHX_REPLY = 'phx_reply';
export const PHX_ERROR = 'phx_error';
export const PHX_CLOSE = 'phx_close';
export const PHOENIX_TOPIC = 'phoenix';
export const HEARTBEAT = 'heartbeat';

/** The queue channel every worker joins. */
export const WORKER_QUEUE_TOPIC = 'worker:queue';
export const CLAIM = 'claim';
/** Lanes extension (`held_claims`), worker → server on `worker:queue`: answer every held claim of this connection now. */
export const CLAIM_RELEASE = 'claim:release';
export const WORK_AVAILABLE = 'work-available';

/** The per-run channel `run:<id>`. */
export const RUN_TOPIC_PREFIX = 'run:';
export const runTopic = (runId: string): string => `${RUN_TOPIC_PREFIX}${runId}`;

export const FETCH_PLAN = 'fetch:plan';
export const FETCH_DATACLIP = 'fetch:dataclip';
export const FETCH_CREDENTIAL = 'fetch:credential';
export const RUN_START = 'run:start';
export const STEP_START = 'step:start';
export const RUN_LOG = 'run:log';
export const RUN_BATCH_LOGS = 'run:batch_logs';
export const STEP_COMPLETE = 'step:complete';
export const RUN_COMPLETE = 'run:complete';
/** Lanes extension, only when the server lists `run_heartbeat`. */
export const RUN_HEARTBEAT = 'run:heartbeat';

/**
 * Lanes extension, only between a worker and a server that both declared
 * `run_cancel`: the server pushes it on `worker:queue` when a run it handed
 * to that worker is cancelled (payload `RunCancelPayload`).
 */
export const RUN_CANCEL = 'run:cancel';

/** Capabilities a Lanes server offers in its `worker:queue` join reply. */
export const CAPABILITY_RUN_HEARTBEAT = 'run_heartbeat';
export const CAPABILITY_IDEMPOTENT_EVENTS = 'idempotent_events';
export const CAPABILITY_RUN_CANCEL = 'run_cancel';
/**
 * Claims say what memory fits (`max_run_memory_mb`, `lane_memory_mb`,
 * `default_run_memory_mb`), and each claimed run says what it was given
 * (`memory_mb`): the server hands out only runs whose memory need fits.
 */
export const CAPABILITY_MEMORY_CLAIMS = 'memory_claims';
/**
 * Each run of a claim reply carries its plan (`plan`, the `fetch:plan` reply)
 * and, when small, its input (`dataclip`, the UTF-8 JSON text `fetch:dataclip`
 * would send): the worker starts the run at once, joining `run:<id>` beside
 * it, instead of three round trips (join, fetch:plan, fetch:dataclip) first.
 */
export const CAPABILITY_CLAIM_PLANS = 'claim_plans';
/**
 * `work-available` names the queues that got work (`{queues: [...]}`), and
 * the worker wakes only the lanes whose chain could take one of them. A push
 * without `queues` (Lightning's `{}`) still wakes every lane.
 */
export const CAPABILITY_WORK_QUEUES = 'work_queues';
/**
 * A claim may carry `hold_ms`: when nothing fits now, the server holds the
 * claim up to that long and answers it the moment a run it may take is
 * queued (`{runs: []}` when the time is up), instead of the worker waiting
 * for `work-available` and claiming again. `claim:release` answers every
 * claim the connection holds with `{runs: []}` (a worker that stops).
 */
export const CAPABILITY_HELD_CLAIMS = 'held_claims';
export type Capability =
  | typeof CAPABILITY_RUN_HEARTBEAT
  | typeof CAPABILITY_IDEMPOTENT_EVENTS
  | typeof CAPABILITY_RUN_CANCEL
  | typeof CAPABILITY_MEMORY_CLAIMS
  | typeof CAPABILITY_CLAIM_PLANS
  | typeof CAPABILITY_WORK_QUEUES
  | typeof CAPABILITY_HELD_CLAIMS;

/** Every Lanes extension, in the order a Lanes server lists them in its join reply. */
export const LANES_CAPABILITIES: readonly Capability[] = Object.freeze([
  CAPABILITY_RUN_HEARTBEAT,
  CAPABILITY_IDEMPOTENT_EVENTS,
  CAPABILITY_RUN_CANCEL,
  CAPABILITY_MEMORY_CLAIMS,
  CAPABILITY_CLAIM_PLANS,
  CAPABILITY_WORK_QUEUES,
  CAPABILITY_HELD_CLAIMS,
]);

/** Step output over the payload limit (PROTOCOL.md, step:complete). */
export const DATACLIP_TOO_LARGE = 'DATACLIP_TOO_LARGE';

export { WILDCARD } from './queue-chain.ts';
