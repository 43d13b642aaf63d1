/**
 * The types of every protocol event's payload and reply (PROTOCOL.md), in one
 * place for readers and importers. Each is derived from its schema in this
 * folder (`*-schema.ts`, `run-event-schemas.ts`), never written twice. Field
 * names are the wire's own (snake_case); nothing here does I/O.
 */
export type { JoinLane, QueueJoinPayload, QueueJoinReply } from './join-schema.ts';
export type { ClaimPayload, ClaimReply, ClaimedRun, RunCancelPayload, WorkAvailablePayload } from './claim-schema.ts';

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
  RunJoinError,
  RunLogReply,
  RunStartPayload,
  StepCompleteReply,
  StepCompletePayload,
  StepMemory,
  StepStartPayload,
  StepStartReply,
  WebhookResponse,
} from './run-event-schemas.ts';

export type LogLevel = 'debug' | 'info' | 'log' | 'warn' | 'error' | 'success' | 'always';

export type { FieldErrors } from './wire-shape.ts';

