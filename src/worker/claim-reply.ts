/** The runs of a `claim` reply, as the lanes see them, read with the protocol's `ClaimReplySchema`. */
import type { Logger } from 'pino';
import { claimReplyShape, claimedRunShape } from '../protocol/index.ts';
import type { ClaimedRun, WireClaimedRun } from '../protocol/index.ts';
import { readCheckedPlan } from './plan-reply.ts';

/**
 * Phoenix's socket drops frames it cannot decode; this is what the lanes see
 * of a claim reply. A well-formed reply (every claim, in practice) costs one
 * compiled check; otherwise each run is read on its own, so one malformed run
 * does not cost the others their slot.
 */
export function parseClaimedRuns(response: unknown, logger: Logger): ClaimedRun[] {
  if (claimReplyShape.check(response)) return response.runs.map(withReadPlan);
  const runs = typeof response === 'object' && response !== null ? (response as { runs?: unknown }).runs : undefined;
  if (!Array.isArray(runs)) {
    logger.error({ problems: claimReplyShape.problems(response) }, 'claim reply has no runs list');
    return [];
  }
  const valid: ClaimedRun[] = [];
  for (const run of runs) {
    const read = readRun(run);
    if (read === undefined) logger.error({ problems: claimedRunShape.problems(run) }, 'claim reply holds a malformed run');
    else valid.push(withReadPlan(read));
  }
  return valid;
}

/**
 * A run whose extras do not all fit: its id and token, with each extra that
 * does. A memory need the lane cannot use is ignored (the lane assumes its
 * default); a plan or input that does not fit is left out and fetched.
 */
function readRun(run: unknown): WireClaimedRun | undefined {
  if (claimedRunShape.check(run)) return run;
  const raw = typeof run === 'object' && run !== null ? (run as Record<string, unknown>) : {};
  const base: Record<string, unknown> = { id: raw['id'], token: raw['token'] };
  if (!claimedRunShape.check(base)) return undefined;
  for (const extra of [{ memory_mb: raw['memory_mb'] }, { plan: raw['plan'], dataclip: raw['dataclip'] }]) {
    const withExtra = { ...base, ...extra };
    if (claimedRunShape.check(withExtra)) Object.assign(base, extra);
  }
  return claimedRunShape.check(base) ? base : undefined;
}

/**
 * claim_plans: a carried plan is read as fetch:plan's reply would be (graph
 * rules, defaults). One that does not read, or names another run, is left
 * out with its input, and the run fetches its plan, whose problem it then reports.
 */
function withReadPlan(run: WireClaimedRun): ClaimedRun {
  const { plan, dataclip, ...rest } = run;
  if (plan === undefined) return rest;
  // Its shape was checked with the run's (`ClaimedRunSchema` holds `PlanReplySchema`): only its graph is left.
  const reading = readCheckedPlan(plan);
  if (!reading.ok || reading.plan.id !== run.id) return rest;
  return dataclip === undefined ? { ...rest, plan: reading.plan } : { ...rest, plan: reading.plan, dataclip };
}
