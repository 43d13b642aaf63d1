/**
 * Payloads and replies of every protocol event (PROTOCOL.md), as TypeScript
 * types shared by the worker and the server. Field names are the wire's own
 * (snake_case); nothing here does I/O.
 */
import type { Capability } from './events.ts';
import type { ExitReason } from './reasons.ts';
import type { RunPlan } from './plan-schema.ts';

/** Join payload of `worker:queue`: total slots, and each lane's chain (joined with `>`) → slots. */
export interface QueueJoinPayload {
  capacity: number;
  queues: Record<string, number>;
  /**
   * Lanes extensions the worker speaks when the server offers them. A Lanes
   * server leases a declared `run_heartbeat` worker's runs by heartbeat from
   * the claim on; Lightning ignores the field.
   */
  capabilities?: Capability[];
  /**
   * With `memory_claims`: each lane's chain (joined with `>`) → the memory in
   * MB its runs may use together, so a server can tell a run that no
   * connected lane could ever take.
   */
  lanes_memory_mb?: Record<string, number>;
  /** With memory_claims and `--max-memory`: the worker's ceiling in MB, for `GET /api/workers`. */
  memory_ceiling_mb?: number;
  /**
   * Lanes extension: every lane on its own, in order. `queues` is keyed by
   * chain, so two lanes with one chain (`dup:1 dup:1`) are one entry there
   * (their slots summed); here they stay two. Lightning ignores the field.
   */
  lanes?: JoinLane[];
}

/** One lane as a worker declares it in its join (`QueueJoinPayload.lanes`). */
export interface JoinLane {
  queues: string[];
  capacity: number;
}

/** Join reply of `worker:queue` from a Lanes server; Lightning replies `{}`. */
export interface QueueJoinReply {
  capabilities?: Capability[];
  heartbeat_interval_ms?: number;
  lease_ms?: number;
}

export interface ClaimPayload {
  demand: number;
  worker_name: string | null;
  /** Ordered preference chain, `*` only last. Missing means `["manual", "*"]`. */
  queues?: string[];
  /** With `memory_claims`: the memory in MB the lane has free now; the runs handed out fit in it together. */
  max_run_memory_mb?: number;
  /** With `memory_claims`: the lane's whole memory in MB; a run needing more never fits this lane. */
  lane_memory_mb?: number;
  /** With `memory_claims`: the need assumed for a run whose plan declares no `run_memory_limit_mb`. */
  default_run_memory_mb?: number;
}

export interface ClaimedRun {
  id: string;
  token: string;
  /** With `memory_claims`: the memory need (MB) the server counted this run with. */
  memory_mb?: number;
  /** With `claim_plans`: the run's plan, as `fetch:plan` would answer. */
  plan?: RunPlan;
  /**
   * With `claim_plans`: the run's input as the UTF-8 JSON text `fetch:dataclip`
   * would send, when it is at most `CLAIM_DATACLIP_MAX_BYTES`; absent, the
   * worker fetches it.
   */
  dataclip?: string;
}

/** The largest input a claim reply carries inline (`claim_plans`); a larger one is fetched. */
export const CLAIM_DATACLIP_MAX_BYTES = 64 * 1024;
/** The largest plan (as JSON) a claim reply carries inline (`claim_plans`); a larger one is fetched. */
export const CLAIM_PLAN_MAX_BYTES = 256 * 1024;

export interface ClaimReply {
  runs: ClaimedRun[];
}

export type WorkAvailablePayload = Record<string, never>;

export interface RunJoinPayload {
  token: string;
}

export type { EdgeCondition, PlanEdge, PlanJob, PlanOptions, PlanTrigger, RunPlan, StoredPlan } from './plan-schema.ts';

export interface FetchDataclipPayload {
  id: string;
}

export interface FetchCredentialPayload {
  id: string;
}

export interface RunStartPayload {
  timestamp: string;
  versions?: Record<string, string>;
}

export interface StepStartPayload {
  step_id: string;
  job_id: string;
  input_dataclip_id?: string;
  timestamp: string;
}

export interface StepStartReply {
  step_id: string;
}

export type LogLevel = 'debug' | 'info' | 'log' | 'warn' | 'error' | 'success' | 'always';

export interface LogLine {
  run_id: string;
  message: unknown[];
  level: string;
  /** `JOB` for job code, `R/T` for runtime notes, `RTE` for engine notes. */
  source: string;
  step_id?: string;
  timestamp: string;
  /** Lanes `idempotent_events` key; ignored by Lightning. */
  log_id?: string;
}

export type RunLogPayload = LogLine;

export interface RunLogReply {
  log_line_id: string;
}

export interface BatchLogsPayload {
  run_id: string;
  logs: LogLine[];
  /** Lanes `idempotent_events` key for the batch. */
  log_id?: string;
}

export interface StepMemory {
  job: number;
  system: number;
}

export interface StepCompletePayload {
  step_id: string;
  job_id: string;
  reason: ExitReason;
  error_type: string | null;
  error_message: string | null;
  output_dataclip?: string;
  output_dataclip_id?: string;
  output_dataclip_error?: string;
  mem: StepMemory;
  duration: number;
  thread_id?: number;
  webhook_response?: WebhookResponse;
  timestamp: string;
}

export interface WebhookResponse {
  status?: number;
  body?: unknown;
}

export interface StepCompleteReply {
  step_id: string;
}

export interface RunCompletePayload {
  reason: ExitReason;
  error_type: string | null;
  error_message: string | null;
  final_dataclip_id?: string;
  final_state?: unknown;
  timestamp: string;
}

/** `run:cancel` (server → worker on `worker:queue`, `run_cancel` extension): end this run with reason `cancel`. */
export interface RunCancelPayload {
  run_id: string;
}

export interface RunHeartbeatPayload {
  timestamp: string;
}

export type { FieldErrors } from './wire-shape.ts';

/** Join error replies of `run:<id>`. */
export interface RunJoinError {
  reason: 'unauthorized' | 'not_found';
}
