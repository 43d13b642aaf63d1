/**
 * A `POST /api/runs` body made into what the server stores. The body's shape
 * is `SubmissionBodySchema` (protocol/submission-schema.ts), shared with the
 * client; the first problem is returned as `{field, message}` (a dotted path
 * such as `plan.jobs[0].adaptor`), and nothing is stored unless the whole
 * body is valid.
 */
import { DEFAULT_QUEUE, normalizePlan, notBeforeAt, planBodyShape, submissionBodyShape, submissionProblem } from '../protocol/index.ts';
import type { FieldProblem, StoredPlan } from '../protocol/index.ts';

/** A valid submission, defaults applied, as the store takes it. */
export interface Submission {
  queue: string;
  priority: number;
  maxAttempts: number;
  idempotencyKey: string | null;
  plan: StoredPlan;
  inputJson: string;
  /** Epoch ms before which the run is not claimable (`not_before`), or null. */
  notBefore: number | null;
}

export type SubmissionProblem = FieldProblem;

/** Validates a submission body; `defaultMaxAttempts` applies when the body names none. */
export function parseSubmission(body: unknown, defaultMaxAttempts: number, now = Date.now()): { ok: true; submission: Submission } | { ok: false; problem: SubmissionProblem } {
  const problem = submissionProblem(body, now);
  if (problem !== undefined || !submissionBodyShape.check(body)) return { ok: false, problem: problem ?? { field: 'body', message: 'is not valid' } };
  const valid = body;
  const notBefore = typeof valid.not_before === 'string' ? notBeforeAt(valid.not_before, now) : null;
  return {
    ok: true,
    submission: {
      queue: valid.queue ?? DEFAULT_QUEUE,
      priority: valid.priority ?? 0,
      maxAttempts: valid.max_attempts ?? defaultMaxAttempts,
      idempotencyKey: valid.idempotency_key ?? null,
      // Fields the plan's schema does not name are not kept: what is stored is what Lanes understands.
      plan: normalizePlan(planBodyShape.clean(valid.plan)),
      inputJson: JSON.stringify(valid.input ?? {}),
      notBefore: typeof notBefore === 'number' ? notBefore : null,
    },
  };
}
