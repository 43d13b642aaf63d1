/**
 * The `claim_plans` extension on the server's side: each run of a claim
 * reply carries its plan and, when small, its input, so the worker can start
 * executing without the three round trips (join, `fetch:plan`,
 * `fetch:dataclip`) that would otherwise come first. Only for workers that
 * declared the capability in their join; Lightning-compatible workers get the
 * plain `{id, token}` reply.
 *
 * A plan or input too large to ride in the reply is left out, and the worker
 * fetches it as usual: a claim reply stays a small frame whatever the demand.
 */
import { CLAIM_DATACLIP_MAX_BYTES, CLAIM_PLAN_MAX_BYTES, planReplyShape } from '../protocol/index.ts';
import type { ClaimedRun } from '../protocol/index.ts';
import type { RunRecord, Store } from './store/store.ts';

/** A run whose plan and input the caller holds already (a hand-off's, run-hand-off.ts): its reply needs no read. */
export interface KnownRun {
  readonly record: RunRecord;
  /** The body of its input dataclip. */
  readonly inputJson: string;
}

/** `runs` with each one's plan and input added where they fit; runs gone meanwhile stay as they were. */
export async function withPlans(store: Store, runs: readonly ClaimedRun[], known?: KnownRun): Promise<ClaimedRun[]> {
  return Promise.all(
    runs.map(async (run): Promise<ClaimedRun> => {
      const mine = known !== undefined && known.record.id === run.id ? known : undefined;
      const record = mine?.record ?? (await store.getRun(run.id));
      if (record === undefined) return run;
      const { plan } = record;
      // A stored plan that does not fit the plan schema (a row written by something else) is not carried: the worker fetches it and reports its problem.
      if (!planReplyShape.check(plan) || JSON.stringify(plan).length > CLAIM_PLAN_MAX_BYTES) return run;
      // A plan without an input (`dataclip_id` empty) starts from an empty state; nothing to carry.
      if (plan.dataclip_id === '') return { ...run, plan };
      const dataclip = mine === undefined ? await store.getDataclip(plan.dataclip_id) : { runId: run.id, body: mine.inputJson };
      if (dataclip === undefined || dataclip.runId !== run.id || Buffer.byteLength(dataclip.body, 'utf8') > CLAIM_DATACLIP_MAX_BYTES) return { ...run, plan };
      return { ...run, plan, dataclip: dataclip.body };
    }),
  );
}
