/**
 * An `idempotency_key` names one submission: sent again with the same body
 * it answers with the run already made (200), sent with a different body it
 * is a conflict (409 naming the existing run), never a silent 200 for a run
 * the caller did not ask for. The comparison reads only what the store keeps
 * of every run (queue, priority, attempts, plan, input dataclip), so each
 * store implementation gets it for free.
 */
import type { RunRecord, Store } from './store/store.ts';
import type { Submission } from './run-submission.ts';

/** The first field in which `submission` differs from the run stored under its key; undefined when it is the same request. */
export async function differingField(store: Pick<Store, 'getDataclip'>, existing: RunRecord, submission: Submission): Promise<string | undefined> {
  if (existing.queue !== submission.queue) return 'queue';
  if (existing.priority !== submission.priority) return 'priority';
  if (existing.maxAttempts !== submission.maxAttempts) return 'max_attempts';
  const { id: _id, dataclip_id: _dataclipId, ...storedPlan } = existing.plan;
  if (JSON.stringify(storedPlan) !== JSON.stringify(submission.plan)) return 'plan';
  if ((await store.getDataclip(existing.dataclipId))?.body !== submission.inputJson) return 'input';
  return undefined;
}
