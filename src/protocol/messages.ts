/**
 * Payloads and replies of every protocol event (PROTOCOL.md), as TypeScript
 * types shared by the worker and the server. Field names are the wire's own
 * (snake_case); nothing here does I/O.
 */
export type { JoinLane, QueueJoinPayload, QueueJoinReply } from './join-schema.ts';
export type { ClaimPayload, ClaimReply, ClaimedRun } from './claim-schema.ts';

export type WorkAvailablePayload = Record<string, never>;

export type { EdgeCondition, PlanEdge, PlanJob, PlanOptions, PlanTrigger, RunPlan, StoredPlan } from './plan-schema.ts';

export type {
  BatchLogsPayload,
  FetchCredentialPayload,
  FetchDataclipPayload,
  LogLine,
  RunCompletePayload,
  RunHeartbeatPayload,
  RunJoinPayload,
  RunLogPayload,
  RunStartPayload,
  StepCompletePayload,
  StepMemory,
  StepStartPayload,
  WebhookResponse,
} from './run-event-schemas.ts';

export interface StepStartReply {
  step_id: string;
}

export type LogLevel = 'debug' | 'info' | 'log' | 'warn' | 'error' | 'success' | 'always';

export interface RunLogReply {
  log_line_id: string;
}

export interface StepCompleteReply {
  step_id: string;
}

/** `run:cancel` (server → worker on `worker:queue`, `run_cancel` extension): end this run with reason `cancel`. */
export interface RunCancelPayload {
  run_id: string;
}

export type { FieldErrors } from './wire-shape.ts';

/** Join error replies of `run:<id>`. */
export interface RunJoinError {
  reason: 'unauthorized' | 'not_found';
}
