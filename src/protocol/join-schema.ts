/**
 * The `worker:queue` join (PROTOCOL.md): the worker's payload (its capacity
 * and lanes, the extensions it speaks, its memory) and a Lanes server's reply
 * (the extensions it offers). The server checks the payload, the worker reads
 * the reply, with these shapes.
 */
import Type from 'typebox';
import type { Static } from 'typebox';
import type { Capability } from './events.ts';
import { integerFrom } from './field-schemas.ts';
import { MAX_LANE_CAPACITY, MAX_LANES, MAX_WORKER_CAPACITY } from './limits.ts';
import { ChainSchema, chainOrderProblem } from './queue-chain.ts';
import { memoryMb } from './claim-schema.ts';
import { wireShape } from './wire-shape.ts';
import type { FieldErrors } from './wire-shape.ts';

const isMap = (value: unknown): boolean => typeof value === 'object' && value !== null && !Array.isArray(value);

/** One lane as a worker declares it in its join (`lanes`). */
export const JoinLaneSchema = Type.Object(
  { queues: ChainSchema, capacity: integerFrom(1, MAX_LANE_CAPACITY) },
  { message: 'must have a queues list' },
);

export const QueueJoinPayloadSchema = Type.Object({
  /** The worker's total slots. */
  capacity: Type.Optional(integerFrom(0, MAX_WORKER_CAPACITY)),
  /** Each lane's chain (joined with `>`) → its slots. */
  queues: Type.Optional(
    Type.Record(Type.String(), integerFrom(1, MAX_LANE_CAPACITY, `slots must be an integer from 1 to ${MAX_LANE_CAPACITY}`), {
      maxProperties: MAX_LANES,
      message: (value: unknown) => (isMap(value) ? `must declare at most ${MAX_LANES} lanes` : 'must map each lane chain to its slots'),
    }),
  ),
  /**
   * Lanes extensions the worker speaks when the server offers them. A Lanes
   * server leases a declared `run_heartbeat` worker's runs by heartbeat from
   * the claim on; Lightning ignores the field. A malformed list is ignored, not refused: it only opts in.
   */
  capabilities: Type.Optional(Type.Unknown()),
  /** With `memory_claims`: each lane's chain → the memory in MB its runs may use together. */
  lanes_memory_mb: Type.Optional(Type.Record(Type.String(), memoryMb(), { message: 'must map each lane chain to its memory in MB' })),
  /** With memory_claims and `--max-memory`: the worker's ceiling in MB, for `GET /api/workers`. */
  memory_ceiling_mb: Type.Optional(memoryMb()),
  /**
   * Lanes extension: every lane on its own, in order. `queues` is keyed by
   * chain, so two lanes with one chain (`dup:1 dup:1`) are one entry there
   * (their slots summed); here they stay two. Lightning ignores the field.
   */
  lanes: Type.Optional(Type.Array(JoinLaneSchema, { maxItems: MAX_LANES, message: `must be a list of at most ${MAX_LANES} lanes` })),
});

/** Join reply of `worker:queue` from a Lanes server; Lightning replies `{}`. */
export const QueueJoinReplySchema = Type.Object({
  capabilities: Type.Optional(Type.Array(Type.String())),
  heartbeat_interval_ms: Type.Optional(Type.Number({ exclusiveMinimum: 0 })),
  lease_ms: Type.Optional(Type.Number({ exclusiveMinimum: 0 })),
});

/** What a worker sends; `capabilities` is typed as the extensions it names. */
export type QueueJoinPayload = Omit<Static<typeof QueueJoinPayloadSchema>, 'capabilities'> & { capabilities?: Capability[] };
export type JoinLane = Static<typeof JoinLaneSchema>;
/** A join payload as the server receives it once checked (`capabilities` is anything: unknown names are ignored). */
export type ReceivedJoinPayload = Static<typeof QueueJoinPayloadSchema>;
export type QueueJoinReply = Omit<Static<typeof QueueJoinReplySchema>, 'capabilities'> & { capabilities?: Capability[] };

export const queueJoinPayloadShape = wireShape(QueueJoinPayloadSchema);
export const queueJoinReplyShape = wireShape(QueueJoinReplySchema);
const chainShape = wireShape(ChainSchema);

/** The problems of a chain (a list of names): the schema's, then `*` only last. */
export function chainProblems(chain: unknown): string[] {
  const problems = Object.values(chainShape.problems(chain)).flat();
  if (problems.length === 0 && Array.isArray(chain)) {
    const order = chainOrderProblem(chain as string[]);
    if (order !== undefined) problems.push(order);
  }
  return problems;
}

/** `queues.manual>*` → `queues`, `"manual>*: …"`: a problem inside a map or a lane is told under the map or the lane, as the join always did. */
function fold(errors: FieldErrors): FieldErrors {
  const folded: FieldErrors = {};
  for (const [field, messages] of Object.entries(errors)) {
    const inside = /^(queues|lanes_memory_mb|lanes\[\d+\])\.(.+)$/.exec(field);
    const key = inside?.[1] ?? field;
    for (const message of messages) (folded[key] ??= []).push(inside === null ? message : `${inside[2]}: ${message}`);
  }
  return folded;
}

/**
 * The problems of a join payload, grouped by field; none for a valid one. A
 * payload that is not an object is Lightning's empty join. Beyond the schema:
 * each chain's names and order, and `lanes_memory_mb` naming only lanes of `queues`.
 */
export function joinPayloadProblems(payload: unknown): FieldErrors {
  const body = isMap(payload) ? (payload as Record<string, unknown>) : {};
  const errors = fold(queueJoinPayloadShape.problems(body));
  const add = (field: string, message: string) => void (errors[field] ??= []).push(message);
  const queues = isMap(body['queues']) ? Object.keys(body['queues'] as object) : [];
  if (errors['queues'] === undefined || queues.length <= MAX_LANES) {
    for (const chain of queues) for (const problem of chainProblems(chain.split('>'))) add('queues', `${chain}: ${problem}`);
  }
  if (Array.isArray(body['lanes']) && body['lanes'].length <= MAX_LANES) {
    body['lanes'].forEach((lane: unknown, index) => {
      const chain = isMap(lane) ? (lane as Record<string, unknown>)['queues'] : undefined;
      const order = Array.isArray(chain) ? chainOrderProblem(chain as string[]) : undefined;
      if (order !== undefined) add(`lanes[${index}]`, order);
    });
  }
  const memory = body['lanes_memory_mb'];
  if (isMap(memory)) {
    for (const chain of Object.keys(memory as object)) if (!queues.includes(chain)) add('lanes_memory_mb', `${chain}: is not a lane of queues`);
  }
  return errors;
}
