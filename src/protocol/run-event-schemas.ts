/**
 * The events of `run:<id>` (PROTOCOL.md): what the worker sends, as the
 * server accepts it. Each schema is what a Lanes server checks before it
 * writes anything; the payload types the worker builds are derived from the
 * same schemas, with the fields a Lanes worker always sends made required.
 * Rules that need the run (a step of this run, a job of its plan, the step's
 * job) stay with the server's handlers.
 */
import Type from 'typebox';
import type { Static } from 'typebox';
import { anyValue, nonEmptyString, nonNegativeNumber, nullableString } from './field-schemas.ts';
import { EXIT_REASONS } from './reasons.ts';
import { wireShape } from './wire-shape.ts';

const blank = "can't be blank";
/** Timestamps are optional for a server (it uses its own clock when one is missing or unreadable). */
const timestamp = () => Type.Optional(Type.Unknown());
const reason = () => Type.Enum(EXIT_REASONS, { message: 'is invalid' });

export const RunJoinPayloadSchema = Type.Object({ token: nonEmptyString() });
export const FetchByIdPayloadSchema = Type.Object({ id: nonEmptyString(blank) });

export const RunStartPayloadSchema = Type.Object({
  timestamp: timestamp(),
  /** Worker, node, runtime and adaptor versions, for the run's record. */
  versions: Type.Optional(Type.Record(Type.String(), Type.String(), { message: 'must be an object' })),
});

export const StepStartPayloadSchema = Type.Object({
  step_id: nonEmptyString(blank),
  job_id: nonEmptyString(blank),
  input_dataclip_id: Type.Optional(nullableString('must be a string')),
  timestamp: timestamp(),
});

export const WebhookResponseSchema = Type.Object(
  { status: Type.Optional(Type.Integer({ minimum: 100, maximum: 599, message: 'must be an HTTP status' })), body: Type.Optional(anyValue()) },
  { message: 'must be an object' },
);

export const StepMemorySchema = Type.Object({ job: Type.Number(), system: Type.Number() }, { message: 'must be {job, system} numbers' });

export const StepCompletePayloadSchema = Type.Object({
  step_id: nonEmptyString(blank),
  job_id: nonEmptyString(blank),
  reason: reason(),
  error_type: Type.Optional(nullableString()),
  error_message: Type.Optional(nullableString()),
  /** The step's output as a JSON string (checked to parse by the server). */
  output_dataclip: Type.Optional(nullableString('must be a JSON string')),
  output_dataclip_id: Type.Optional(nullableString('must be a string')),
  output_dataclip_error: Type.Optional(nullableString('must be a string')),
  mem: Type.Optional(StepMemorySchema),
  duration: Type.Optional(nonNegativeNumber()),
  thread_id: Type.Optional(Type.Union([Type.Number(), Type.Null()], { message: 'must be a number' })),
  webhook_response: Type.Optional(Type.Union([WebhookResponseSchema, Type.Null()])),
  timestamp: timestamp(),
});

export const RunCompletePayloadSchema = Type.Object({
  reason: reason(),
  error_type: Type.Optional(nullableString()),
  error_message: Type.Optional(nullableString()),
  final_dataclip_id: Type.Optional(nullableString('must be a string')),
  final_state: Type.Optional(anyValue()),
  timestamp: timestamp(),
});

export const LogLineSchema = Type.Object(
  {
    run_id: Type.Optional(Type.String()),
    message: Type.Array(anyValue(), { message: 'must be a list' }),
    level: nonEmptyString(blank),
    /** `JOB` for job code, `R/T` for runtime notes, `RTE` for engine notes. */
    source: nonEmptyString(blank),
    step_id: Type.Optional(nullableString('must be a string')),
    /** Microseconds since the epoch, as a string. */
    timestamp: Type.Optional(Type.String({ pattern: '^\\d{1,20}$', message: 'must be a string of microseconds' })),
    /** Lanes `idempotent_events` key; ignored by Lightning. */
    log_id: Type.Optional(nonEmptyString()),
  },
  { message: 'must be an object' },
);

export const BatchLogsPayloadSchema = Type.Object({
  run_id: Type.Optional(Type.String()),
  logs: Type.Array(LogLineSchema, { message: 'must be a list' }),
  /** Lanes `idempotent_events` key for the batch. */
  log_id: Type.Optional(nonEmptyString()),
});

/** A credential's body: `PUT /api/credentials/:id` stores one, `fetch:credential` answers with it. */
export const CredentialBodySchema = Type.Object({}, { message: 'must be a JSON object' });

export const RunHeartbeatPayloadSchema = Type.Object({ timestamp: timestamp() });

/** Replies of the run channel (server → worker). */
export const StepStartReplySchema = Type.Object({ step_id: Type.String() });
export const StepCompleteReplySchema = Type.Object({ step_id: Type.String() });
export const RunLogReplySchema = Type.Object({ log_line_id: Type.String() });
/** Join error replies of `run:<id>`. */
export const RunJoinErrorSchema = Type.Object({ reason: Type.Union([Type.Literal('unauthorized'), Type.Literal('not_found')]) });

/** What a Lanes worker always sends: the timestamp as a string of microseconds. */
type Stamped<T> = Omit<T, 'timestamp'> & { timestamp: string };

export type RunJoinPayload = Static<typeof RunJoinPayloadSchema>;
export type FetchDataclipPayload = Static<typeof FetchByIdPayloadSchema>;
export type FetchCredentialPayload = Static<typeof FetchByIdPayloadSchema>;
export type RunStartPayload = Stamped<Static<typeof RunStartPayloadSchema>>;
export type StepStartPayload = Stamped<Static<typeof StepStartPayloadSchema>>;
export type WebhookResponse = Static<typeof WebhookResponseSchema>;
export type StepMemory = Static<typeof StepMemorySchema>;
export type StepCompletePayload = Stamped<Static<typeof StepCompletePayloadSchema>> &
  Required<Pick<Static<typeof StepCompletePayloadSchema>, 'error_type' | 'error_message' | 'mem' | 'duration'>>;
export type RunCompletePayload = Stamped<Static<typeof RunCompletePayloadSchema>> & Required<Pick<Static<typeof RunCompletePayloadSchema>, 'error_type' | 'error_message'>>;
export type LogLine = Stamped<Static<typeof LogLineSchema>> & { run_id: string };
export type RunLogPayload = LogLine;
export type BatchLogsPayload = Omit<Static<typeof BatchLogsPayloadSchema>, 'logs'> & { run_id: string; logs: LogLine[] };
export type RunHeartbeatPayload = Stamped<Static<typeof RunHeartbeatPayloadSchema>>;
export type StepStartReply = Static<typeof StepStartReplySchema>;
export type StepCompleteReply = Static<typeof StepCompleteReplySchema>;
export type RunLogReply = Static<typeof RunLogReplySchema>;
export type RunJoinError = Static<typeof RunJoinErrorSchema>;

export const runJoinPayloadShape = wireShape(RunJoinPayloadSchema);
export const fetchByIdShape = wireShape(FetchByIdPayloadSchema);
export const runStartPayloadShape = wireShape(RunStartPayloadSchema);
export const stepStartPayloadShape = wireShape(StepStartPayloadSchema);
export const stepCompletePayloadShape = wireShape(StepCompletePayloadSchema);
export const runCompletePayloadShape = wireShape(RunCompletePayloadSchema);
export const logLineShape = wireShape(LogLineSchema);
export const batchLogsPayloadShape = wireShape(BatchLogsPayloadSchema);
export const credentialBodyShape = wireShape(CredentialBodySchema);
