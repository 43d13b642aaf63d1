/**
 * `claim` on `worker:queue` (PROTOCOL.md): the payload a lane pushes, the
 * reply with the runs it got. The server checks the payload and the worker
 * the reply with these shapes on every claim, so their `check` is the claim
 * path's cost (docs/protocol.md, "One schema per shape").
 */
import Type from 'typebox';
import type { Static } from 'typebox';
import { integerFrom, nonEmptyString } from './field-schemas.ts';
import { MAX_RUN_MEMORY_MB, QUEUE_NAME_PATTERN } from './limits.ts';
import { PlanReplySchema } from './plan-schema.ts';
import type { RunPlan } from './plan-schema.ts';
import { ChainSchema, chainOrderProblem } from './queue-chain.ts';
import { wireShape } from './wire-shape.ts';
import type { FieldErrors } from './wire-shape.ts';

/** Largest `demand` one claim may ask for. */
export const MAX_DEMAND = 1000;
/** Longest `worker_name`. */
export const MAX_WORKER_NAME_LENGTH = 255;
/** Longest a claim may ask to be held (`hold_ms`, `held_claims`). */
export const MAX_CLAIM_HOLD_MS = 60_000;
/** The chain used when a claim names none (PROTOCOL.md). */
export const DEFAULT_CLAIM_CHAIN: readonly string[] = Object.freeze(['manual', '*']);

/** A memory size in MB on the wire: a whole number from 0 to MAX_RUN_MEMORY_MB. */
export const memoryMb = (message = `must be an integer from 0 to ${MAX_RUN_MEMORY_MB}`) => integerFrom(0, MAX_RUN_MEMORY_MB, message);

const claimMemory = () => Type.Optional(memoryMb(`must be an integer from 0 to ${MAX_RUN_MEMORY_MB} (memory claims send all three memory fields)`));

export const ClaimPayloadSchema = Type.Object(
  {
    demand: integerFrom(1, MAX_DEMAND),
    worker_name: Type.Optional(
      Type.Union([Type.String({ maxLength: MAX_WORKER_NAME_LENGTH }), Type.Null()], { message: `must be a string of at most ${MAX_WORKER_NAME_LENGTH} characters, or null` }),
    ),
    /** Ordered preference chain, `*` only last. Missing means `["manual", "*"]`. */
    queues: Type.Optional(ChainSchema),
    /** With `memory_claims`: the memory in MB the lane has free now; the runs handed out fit in it together. */
    max_run_memory_mb: claimMemory(),
    /** With `memory_claims`: the lane's whole memory in MB; a run needing more never fits this lane. */
    lane_memory_mb: claimMemory(),
    /** With `memory_claims`: the need assumed for a run whose plan declares no `run_memory_limit_mb`. */
    default_run_memory_mb: claimMemory(),
    /** With `held_claims`: when nothing fits now, hold the claim up to this long and answer it when a run it may take is queued. */
    hold_ms: Type.Optional(integerFrom(0, MAX_CLAIM_HOLD_MS)),
  },
  { message: 'must be an object' },
);

/** The largest input a claim reply carries inline (`claim_plans`); a larger one is fetched. */
export const CLAIM_DATACLIP_MAX_BYTES = 64 * 1024;
/** The largest plan (as JSON) a claim reply carries inline (`claim_plans`); a larger one is fetched. */
export const CLAIM_PLAN_MAX_BYTES = 256 * 1024;

export const ClaimedRunSchema = Type.Object({
  id: nonEmptyString(),
  token: nonEmptyString(),
  /** With `memory_claims`: the memory need (MB) the server counted this run with. */
  memory_mb: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_RUN_MEMORY_MB, message: `must be an integer from 1 to ${MAX_RUN_MEMORY_MB}` })),
  /** With `claim_plans`: the run's plan, as `fetch:plan` would answer. */
  plan: Type.Optional(PlanReplySchema),
  /**
   * With `claim_plans`: the run's input as the UTF-8 JSON text `fetch:dataclip`
   * would send, when it is at most `CLAIM_DATACLIP_MAX_BYTES`; absent, the
   * worker fetches it.
   */
  dataclip: Type.Optional(Type.String({ message: 'must be a string' })),
});

export const ClaimReplySchema = Type.Object({ runs: Type.Array(ClaimedRunSchema, { message: 'must be a list' }) }, { message: 'must be an object' });

/**
 * Most queues one `work-available` names (`work_queues`): a coalescing window
 * that queued work in more sends `{}` instead, which wakes every lane.
 */
export const MAX_WORK_QUEUES = 64;

/**
 * `work-available` (server → worker on `worker:queue`): new work was queued.
 * With `work_queues`, `queues` names the queues that got it; without it (and
 * from Lightning) the payload is `{}`, which a worker always accepts.
 */
export const WorkAvailablePayloadSchema = Type.Object(
  { queues: Type.Optional(Type.Array(Type.String({ pattern: QUEUE_NAME_PATTERN.source }), { minItems: 1, maxItems: MAX_WORK_QUEUES, message: `must be a list of 1 to ${MAX_WORK_QUEUES} queue names` })) },
  { additionalProperties: false, message: 'must be an object' },
);
/** `run:cancel` (server → worker on `worker:queue`, `run_cancel` extension): end this run with reason `cancel`. */
export const RunCancelPayloadSchema = Type.Object({ run_id: nonEmptyString() });

export type WorkAvailablePayload = Static<typeof WorkAvailablePayloadSchema>;
export type RunCancelPayload = Static<typeof RunCancelPayloadSchema>;
export type ClaimPayload = Static<typeof ClaimPayloadSchema>;
/** A run of a claim reply as it travels. */
export type WireClaimedRun = Static<typeof ClaimedRunSchema>;
/** A run of a claim reply as the lanes hold it: a carried plan has been read (graph rules, defaults) by the worker. */
export type ClaimedRun = Omit<WireClaimedRun, 'plan'> & { plan?: RunPlan };
export type ClaimReply = { runs: ClaimedRun[] };

export const claimPayloadShape = wireShape(ClaimPayloadSchema);
export const claimedRunShape = wireShape(ClaimedRunSchema);
export const claimReplyShape = wireShape(ClaimReplySchema);
export const runCancelPayloadShape = wireShape(RunCancelPayloadSchema);
export const workAvailablePayloadShape = wireShape(WorkAvailablePayloadSchema);

const MEMORY_FIELDS = ['max_run_memory_mb', 'lane_memory_mb', 'default_run_memory_mb'] as const;

/** Memory claims send all three memory fields or none: the fields a partial claim lacks. */
function missingMemoryFields(payload: Record<string, unknown>): string[] {
  const present = MEMORY_FIELDS.filter((field) => payload[field] !== undefined);
  return present.length === 0 ? [] : MEMORY_FIELDS.filter((field) => payload[field] === undefined);
}

/**
 * A claim payload, or its problems as a `{field: [messages]}` error reply:
 * the schema's, then the rules it cannot say (`*` only last, memory fields
 * all or none). A payload that is not an object is refused as `payload` and
 * its fields as missing.
 */
export function readClaimPayload(payload: unknown): { ok: true; claim: ClaimPayload } | { ok: false; errors: FieldErrors } {
  if (claimPayloadShape.check(payload) && chainOrderProblem(payload.queues ?? []) === undefined && missingMemoryFields(payload).length === 0) {
    return { ok: true, claim: payload };
  }
  const isObject = typeof payload === 'object' && payload !== null && !Array.isArray(payload);
  const body = isObject ? (payload as Record<string, unknown>) : {};
  const errors: FieldErrors = isObject ? {} : { payload: ['must be an object'] };
  const add = (field: string, message: string) => void (errors[field] ??= []).push(message);
  for (const [field, messages] of Object.entries(claimPayloadShape.problems(body))) for (const message of messages) add(field, message);
  const queues = body['queues'];
  const order = Array.isArray(queues) ? chainOrderProblem(queues as string[]) : undefined;
  if (order !== undefined) add('queues', order);
  for (const field of missingMemoryFields(body)) add(field, `must be an integer from 0 to ${MAX_RUN_MEMORY_MB} (memory claims send all three memory fields)`);
  return { ok: false, errors };
}
