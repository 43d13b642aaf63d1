/**
 * The body of `POST /api/runs` (docs/server.md): the server validates it with
 * this shape, the client's `submit` is typed by it. Unknown fields are
 * refused, so a misspelt `max_attempt` is not silently ignored; what a schema
 * cannot say (the plan's graph, `not_before` as a real time) is checked by
 * `submissionProblem` after it.
 */
import Type from 'typebox';
import type { Static } from 'typebox';
import { integerFrom } from './field-schemas.ts';
import { QUEUE_NAME_PATTERN, queueNameProblem } from './limits.ts';
import { planGraphProblem } from './plan-graph.ts';
import { PlanBodySchema } from './plan-schema.ts';
import { wireShape } from './wire-shape.ts';
import type { FieldProblem } from './wire-shape.ts';

/** The queue of a submission that names none. */
export const DEFAULT_QUEUE = 'default';
/** How far ahead `not_before` may be: a year. */
export const MAX_DELAY_MS = 366 * 24 * 60 * 60 * 1000;
export const MAX_PRIORITY = 1_000_000;
export const MAX_ATTEMPTS_LIMIT = 100;
/** Longest `idempotency_key`. */
export const MAX_IDEMPOTENCY_KEY_LENGTH = 255;

const NOT_BEFORE_MESSAGE = 'must be an ISO 8601 time with a zone, such as 2026-12-01T09:30:00Z';

const submissionFields = {
  queue: Type.Optional(Type.String({ pattern: QUEUE_NAME_PATTERN.source, message: (value: unknown) => queueNameProblem(value) ?? 'is not a queue name' })),
  priority: Type.Optional(integerFrom(-MAX_PRIORITY, MAX_PRIORITY)),
  max_attempts: Type.Optional(integerFrom(1, MAX_ATTEMPTS_LIMIT)),
  idempotency_key: Type.Optional(
    Type.Union([Type.String({ minLength: 1, maxLength: MAX_IDEMPOTENCY_KEY_LENGTH }), Type.Null()], { message: `must be a string of 1 to ${MAX_IDEMPOTENCY_KEY_LENGTH} characters` }),
  ),
  plan: PlanBodySchema,
  input: Type.Optional(Type.Union([Type.Object({}), Type.Null()], { message: 'must be a JSON object' })),
  not_before: Type.Optional(
    Type.Union([Type.String({ maxLength: 64, pattern: '^\\d{4}-\\d{2}-\\d{2}T[\\d:.]+(Z|[+-]\\d{2}:\\d{2})$' }), Type.Null()], { message: NOT_BEFORE_MESSAGE }),
  ),
};

/** The fields of a submission body, in the order they are checked. */
export const SUBMISSION_FIELDS: readonly string[] = Object.freeze(Object.keys(submissionFields));

export const SubmissionBodySchema = Type.Object(submissionFields, {
  additionalProperties: false,
  message: 'must be a JSON object',
  unknownMessage: `is not a field of a submission (${SUBMISSION_FIELDS.join(', ')})`,
});

/** A `POST /api/runs` body as it travels. */
export type SubmissionBody = Static<typeof SubmissionBodySchema>;

export const submissionBodyShape = wireShape(SubmissionBodySchema);

/** `not_before` as epoch ms (a past time means now), or a problem: the schema checked its form, this its meaning. */
export function notBeforeAt(value: string, now: number): number | FieldProblem {
  const at = Date.parse(value);
  if (!Number.isFinite(at)) return { field: 'not_before', message: 'is not a valid time' };
  if (at - now > MAX_DELAY_MS) return { field: 'not_before', message: 'must be at most 366 days ahead' };
  return Math.max(at, now);
}

/** The first problem of a submission body, the schema's then the plan graph's and `not_before`'s; undefined when it is valid. */
export function submissionProblem(body: unknown, now: number): FieldProblem | undefined {
  const problem = submissionBodyShape.firstProblem(body);
  if (problem !== undefined) return problem.field === '' ? { field: 'body', message: problem.message } : problem;
  const valid = body as SubmissionBody;
  const graph = planGraphProblem(valid.plan, 'plan');
  if (graph !== undefined) return graph;
  if (typeof valid.not_before === 'string') {
    const at = notBeforeAt(valid.not_before, now);
    if (typeof at !== 'number') return at;
  }
  return undefined;
}
