/**
 * What the worker accepts as a `fetch:plan` reply: `PlanReplySchema` and the
 * plan's graph rules (protocol/), the same definitions the server validates
 * submissions with. Lightning always sends every field; OpenFn's
 * lightning-mock and OpenFn's own worker are more lenient, and a Lanes worker
 * accepts what OpenFn's worker accepts (no `triggers` or `edges`, no
 * `dataclip_id`: no input, no `starting_node_id`: the first trigger, else the
 * first job). A plan that breaks a rule ends its run `exception`/`PlanError`
 * with the field and the problem spelled out.
 */
import { normalizePlanReply, planGraphProblem, planReplyShape } from '../protocol/index.ts';
import type { FieldProblem, PlanReply, RunPlan } from '../protocol/index.ts';

export type PlanReading = { ok: true; plan: RunPlan } | { ok: false; problem: string };

export function readPlanReply(reply: unknown): PlanReading {
  if (!planReplyShape.check(reply)) return refused(planReplyShape.firstProblem(reply));
  return readCheckedPlan(reply);
}

/**
 * A plan whose shape was checked already (a claim reply's, checked with the
 * reply's schema, which holds `PlanReplySchema`): its graph rules and defaults.
 */
export function readCheckedPlan(reply: PlanReply): PlanReading {
  const graph = planGraphProblem(reply);
  if (graph !== undefined) return refused(graph);
  return { ok: true, plan: normalizePlanReply(reply) };
}

function refused(problem: FieldProblem | undefined): PlanReading {
  if (problem === undefined || problem.field === '') return { ok: false, problem: `the plan ${problem?.message ?? 'is not valid'}` };
  return { ok: false, problem: `${problem.field} ${problem.message}` };
}
