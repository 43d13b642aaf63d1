/**
 * The plan: the `fetch:plan` reply (PROTOCOL.md) and, without `id` and
 * `dataclip_id`, the `plan` of a `POST /api/runs` body. One schema for the
 * server that stores it, the worker that runs it and the client that sends
 * it; the graph rules a schema cannot say (unique ids, edges between nodes of
 * the plan) are in plan-graph.ts.
 *
 * What is optional here is what OpenFn's lightning-mock and OpenFn's own
 * worker leave out: `triggers` and `edges` (none), `dataclip_id` (no input),
 * `starting_node_id` (the first trigger, else the first job). `normalizePlan`
 * fills those in, so the rest of Lanes sees a `RunPlan` with every field.
 */
import Type from 'typebox';
import type { Static } from 'typebox';
import { anyString, boolean, nonEmptyString, nullableString, positiveNumber } from './field-schemas.ts';
import { MAX_RUN_MEMORY_MB } from './limits.ts';
import { wireShape } from './wire-shape.ts';

export const PlanJobSchema = Type.Object(
  {
    id: nonEmptyString(),
    name: Type.Optional(nullableString()),
    body: anyString(),
    adaptor: nonEmptyString(),
    credential_id: Type.Optional(nullableString()),
  },
  { message: 'must be an object' },
);

export const PlanTriggerSchema = Type.Object({ id: nonEmptyString(), type: Type.Optional(nullableString()) }, { message: 'must be an object' });

export const PlanEdgeSchema = Type.Object(
  {
    id: nonEmptyString(),
    source_trigger_id: Type.Optional(nullableString()),
    source_job_id: Type.Optional(nullableString()),
    target_job_id: nonEmptyString(),
    /** `always`, `on_job_success`, `on_job_failure` or a JavaScript expression over `state`. */
    condition: Type.Optional(nullableString()),
    enabled: Type.Optional(boolean()),
  },
  { message: 'must be an object' },
);

export const PlanOptionsSchema = Type.Object(
  {
    run_timeout_ms: Type.Optional(positiveNumber()),
    run_memory_limit_mb: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: MAX_RUN_MEMORY_MB, message: `must be a positive number of at most ${MAX_RUN_MEMORY_MB} (MB)` })),
    payload_limit_mb: Type.Optional(positiveNumber()),
    log_payload_limit_mb: Type.Optional(positiveNumber()),
    output_dataclips: Type.Optional(boolean()),
    job_log_level: Type.Optional(nullableString()),
    sanitize: Type.Optional(nullableString()),
  },
  { message: 'must be an object' },
);

const planFields = {
  name: Type.Optional(nullableString()),
  project_id: Type.Optional(nullableString()),
  starting_node_id: Type.Optional(nullableString()),
  triggers: Type.Optional(Type.Union([Type.Array(PlanTriggerSchema), Type.Null()], { message: 'must be a list' })),
  jobs: Type.Array(PlanJobSchema, { minItems: 1, message: 'must be a non-empty list' }),
  edges: Type.Optional(Type.Union([Type.Array(PlanEdgeSchema), Type.Null()], { message: 'must be a list' })),
  options: Type.Optional(Type.Union([PlanOptionsSchema, Type.Null()])),
};

/** A plan as a submission carries it (`POST /api/runs` `plan`). */
export const PlanBodySchema = Type.Object(planFields, { message: 'must be an object' });

/** A `fetch:plan` reply, as leniently as OpenFn's worker reads one. */
export const PlanReplySchema = Type.Object({ id: nonEmptyString(), dataclip_id: Type.Optional(nullableString()), ...planFields }, { message: 'must be an object' });

export type PlanJob = Static<typeof PlanJobSchema>;
export type PlanTrigger = Static<typeof PlanTriggerSchema>;
export type PlanEdge = Static<typeof PlanEdgeSchema>;
export type PlanOptions = Static<typeof PlanOptionsSchema>;
export type PlanBody = Static<typeof PlanBodySchema>;
export type PlanReply = Static<typeof PlanReplySchema>;
export type EdgeCondition = NonNullable<PlanEdge['condition']>;

/** A plan with every default filled in: what the server stores (without `id`, `dataclip_id`) and sends. */
export type StoredPlan = Omit<PlanBody, 'starting_node_id' | 'triggers' | 'edges' | 'options'> & {
  starting_node_id: string;
  triggers: PlanTrigger[];
  edges: PlanEdge[];
  options?: PlanOptions;
};

/** A `fetch:plan` reply with every default filled in: what the worker runs. */
export type RunPlan = StoredPlan & { id: string; dataclip_id: string };

export const planBodyShape = wireShape(PlanBodySchema);
export const planReplyShape = wireShape(PlanReplySchema);

/** Fills a checked plan's defaults: no triggers or edges, start at the first trigger (else the first job). */
export function normalizePlan(plan: PlanBody): StoredPlan {
  const { triggers: rawTriggers, edges: rawEdges, starting_node_id: start, options, ...rest } = plan;
  const triggers = rawTriggers ?? [];
  const starting_node_id = start !== undefined && start !== null && start !== '' ? start : (triggers[0]?.id ?? plan.jobs[0]?.id ?? '');
  return { ...rest, starting_node_id, triggers, edges: rawEdges ?? [], ...(options === undefined || options === null ? {} : { options }) };
}

/** A checked `fetch:plan` reply with every default filled in; no `dataclip_id` means no input to fetch (`''`). */
export function normalizePlanReply(reply: PlanReply): RunPlan {
  const { id, dataclip_id: dataclipId, ...body } = reply;
  return { ...normalizePlan(body), id, dataclip_id: dataclipId ?? '' };
}
