/**
 * A run submitted on SQLite while a worker holds a claim that could take it
 * (`held_claims`, held-claims.ts) is stored and handed to that claim in one
 * transaction: the insert, then the claim's own try (the same claim query,
 * demand, chain order, memory rule, lease and token as every other claim), then one
 * commit; the claim is answered once it committed. The claim reply is built
 * from the plan and input just stored, so the hand-off reads nothing back.
 *
 * Before this, the run was committed, then a held claim tried it in a second
 * transaction and read its plan and input back for the reply: on an idle
 * worker that second commit and its reads were a good part of the way from
 * submit to the job's first line.
 *
 * A claim tried here that takes an older run first, or none (its memory does
 * not fit), leaves the new run available: the caller then wakes the workers
 * as for any run, and the claims held here are served as usual.
 *
 * PostgreSQL keeps the two transactions: there a claim may come from another
 * server on the database, and the insert is announced only once committed.
 */
import type { KnownRun } from './claim-plans.ts';
import type { HandOff } from './held-claims.ts';
import type { NewRun, RunRecord, Store } from './store/store.ts';

/** What a held claim tried inside a submission's transaction is given: the transaction, and the run just stored in it. */
export interface HandOffContext extends KnownRun {
  readonly tx: Store;
}

/** Offers a stored run to the held claims (`WorkNotifier.handOff`). */
export type HandOffOffer = (context: HandOffContext) => Promise<HandOff | undefined>;

/** The stored run, and whether a held claim took it (it is `claimed` then, and its claim answered). */
export interface StoredRun {
  run: RunRecord;
  handed: boolean;
}

/**
 * Stores `input` and hands it to a held claim in the same transaction when
 * one takes it. A failure rolls the whole transaction back (nothing is
 * stored, the caller answers with the error) and the claim waits on.
 */
export async function storeAndHandOff(store: Store, offer: HandOffOffer, input: NewRun): Promise<StoredRun> {
  let handOff: HandOff | undefined;
  let run: RunRecord;
  try {
    run = await store.transaction(async (tx) => {
      const inserted = await tx.insertRun(input);
      handOff = await offer({ tx, record: inserted, inputJson: input.inputJson });
      return inserted;
    });
  } catch (error) {
    handOff?.settle(false);
    throw error;
  }
  handOff?.settle(true);
  return { run, handed: handOff?.runs.some((claimed) => claimed.id === run.id) ?? false };
}
