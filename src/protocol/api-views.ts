/**
 * How runs, their steps, attempts and log lines look in the JSON API
 * (docs/server.md, "JSON API"): snake_case fields, ISO 8601 times. The server
 * builds them (server/run-view.ts); the client checks what it reads with the
 * same schemas (client/lanes-api-client.ts); the dashboard reads the types.
 */
import Type from 'typebox';
import type { Static, TSchema } from 'typebox';
import type { RunPlan } from './plan-schema.ts';
import { RUN_STATES } from './reasons.ts';
import { WebhookResponseSchema } from './run-event-schemas.ts';
import { wireShape } from './wire-shape.ts';

const orNull = <T extends TSchema>(schema: T) => Type.Union([schema, Type.Null()]);
const text = () => orNull(Type.String());
const state = () => Type.Enum(RUN_STATES, { message: `must be one of ${RUN_STATES.join(', ')}` });

/** The answer to `POST /api/runs` (without `?wait`): the run made, or the one its idempotency key names. */
export const SubmittedRunViewSchema = Type.Object({ id: Type.String({ minLength: 1 }), state: state(), queue: Type.String() });

/** A run in `GET /api/runs` and the answers of its actions. */
export const RunSummaryViewSchema = Type.Object({
  id: Type.String({ minLength: 1 }),
  queue: Type.String(),
  priority: Type.Number(),
  state: state(),
  reason: text(),
  error_type: text(),
  error_message: text(),
  attempts: Type.Number(),
  max_attempts: Type.Number(),
  dead_letter: Type.Boolean(),
  idempotency_key: text(),
  worker: text(),
  worker_name: text(),
  created_at: text(),
  available_at: text(),
  claimed_at: text(),
  started_at: text(),
  finished_at: text(),
});

export const StepViewSchema = Type.Object({
  id: Type.String(),
  attempt: Type.Number(),
  job_id: Type.String(),
  input_dataclip_id: text(),
  output_dataclip_id: text(),
  output_dataclip_error: text(),
  reason: text(),
  error_type: text(),
  error_message: text(),
  mem: Type.Unknown(),
  duration_ms: orNull(Type.Number()),
  thread_id: orNull(Type.Number()),
  started_at: text(),
  finished_at: text(),
});

/** One attempt of a run: its retry history. */
export const AttemptViewSchema = Type.Object({
  attempt: Type.Number(),
  worker: text(),
  worker_name: text(),
  state: state(),
  error_type: text(),
  error_message: text(),
  claimed_at: text(),
  started_at: text(),
  finished_at: text(),
});

/** A line of `GET /api/runs/:id/logs`; `timestamp` is microseconds since the epoch, as a string. */
export const LogLineViewSchema = Type.Object({
  id: Type.String(),
  attempt: Type.Number(),
  step_id: text(),
  level: Type.String(),
  source: Type.String(),
  message: Type.Array(Type.Unknown()),
  timestamp: Type.String(),
});

/** The full run of `GET /api/runs/:id` (its plan is the stored plan, not re-checked here). */
export const RunDetailViewSchema = Type.Object({
  ...RunSummaryViewSchema.properties,
  plan: Type.Object({}),
  steps: Type.Array(StepViewSchema),
  history: Type.Array(AttemptViewSchema),
  final_dataclip_id: text(),
  final_state: Type.Unknown(),
  webhook_response: orNull(WebhookResponseSchema),
  versions: orNull(Type.Record(Type.String(), Type.String())),
  /** Why an available run waits though workers are connected (no lane has the memory it needs), else null. */
  waiting_reason: Type.Optional(text()),
});

export type SubmittedRunView = Static<typeof SubmittedRunViewSchema>;
export type RunSummaryView = Static<typeof RunSummaryViewSchema>;
export type StepView = Static<typeof StepViewSchema>;
export type AttemptView = Static<typeof AttemptViewSchema>;
export type LogLineView = Static<typeof LogLineViewSchema>;
export type RunDetailView = Omit<Static<typeof RunDetailViewSchema>, 'plan'> & { plan: RunPlan };

export const submittedRunViewShape = wireShape(SubmittedRunViewSchema);
export const runDetailViewShape = wireShape(RunDetailViewSchema);
