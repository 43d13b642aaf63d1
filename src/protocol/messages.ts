/**
 * Payloads and replies of every protocol event (PROTOCOL.md), as TypeScript
 * types shared by the worker and the server. Field names are the wire's own
 * (snake_case); nothing here does I/O.
 */
import type { ExitReason } from './reasons.ts';

export type { JoinLane, QueueJoinPayload, QueueJoinReply } from './join-schema.ts';
export type { ClaimPayload, ClaimReply, ClaimedRun } from './claim-schema.ts';

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
