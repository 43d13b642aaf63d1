/** The runs of a `claim` reply, as the lanes see them. */
import type { Logger } from 'pino';
import type { ClaimedRun } from '../protocol/messages.ts';
import { readPlanReply } from './plan-reply.ts';

/** Phoenix's socket drops frames it cannot decode; this is what the lanes see of a claim reply. */
export function parseClaimedRuns(response: unknown, logger: Logger): ClaimedRun[] {
  const runs = typeof response === 'object' && response !== null ? (response as { runs?: unknown }).runs : undefined;
  if (!Array.isArray(runs)) {
    logger.error({ response }, 'claim reply has no runs list');
    return [];
  }
  const valid: ClaimedRun[] = [];
  for (const run of runs) {
    const candidate = run as { id?: unknown; token?: unknown; memory_mb?: unknown; plan?: unknown; dataclip?: unknown } | null;
    if (candidate !== null && typeof candidate === 'object' && typeof candidate.id === 'string' && typeof candidate.token === 'string') {
      const claimed: ClaimedRun = { id: candidate.id, token: candidate.token };
      const memory = candidate.memory_mb;
      // A need the server counted (memory_claims); anything else is ignored and the lane assumes its default.
      if (typeof memory === 'number' && Number.isInteger(memory) && memory > 0) claimed.memory_mb = memory;
      // claim_plans: a plan read as fetch:plan's reply would be. One that does not read (or names
      // another run) is left out, and the run fetches its plan, whose problem it then reports.
      if (candidate.plan !== undefined) {
        const reading = readPlanReply(candidate.plan);
        if (reading.ok && reading.plan.id === candidate.id) {
          claimed.plan = reading.plan;
          if (typeof candidate.dataclip === 'string') claimed.dataclip = candidate.dataclip;
        }
      }
      valid.push(claimed);
    } else {
      logger.error({ run }, 'claim reply holds a malformed run');
    }
  }
  return valid;
}
