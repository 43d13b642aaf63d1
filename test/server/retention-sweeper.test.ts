/**
 * The retention sweeper's loop (what it deletes is covered by the store
 * suite): it sweeps at start, never stacks a sweep on a slow one, and a stop
 * ends a sweep between two batches. The store is a typed fake with the two
 * members the sweeper reads, so a batch can be held open.
 */
import test from 'ava';
import pino from 'pino';
import { RETENTION_BATCH, RetentionSweeper } from '../../src/server/retention-sweeper.ts';
import type { Store } from '../../src/server/store/store.ts';
import { waitFor } from './helpers.ts';

class SlowStore {
  isOpen = true;
  calls = 0;
  #release: Array<() => void> = [];

  /** Every batch is full (so the sweep goes on) and waits for releaseAll(). */
  deleteFinishedBefore(): Promise<number> {
    this.calls += 1;
    return new Promise((resolve) => this.#release.push(() => resolve(RETENTION_BATCH)));
  }

  releaseAll(): void {
    for (const release of this.#release.splice(0)) release();
  }
}

test('sweeps at start, one sweep at a time, and a stop ends the sweep between batches', async (t) => {
  const store = new SlowStore();
  const sweeper = new RetentionSweeper({ store: store as unknown as Store, retainMs: 1_000, intervalMs: 5, logger: pino({ level: 'silent' }) });
  t.teardown(() => {
    sweeper.stop();
    store.releaseAll();
  });
  sweeper.start();
  t.is(store.calls, 1, 'the first batch is asked for at start');
  const periods = Date.now() + 100;
  await waitFor(() => Date.now() > periods || null, { timeoutMs: 5_000, message: 'a few periods' });
  t.is(store.calls, 1, 'no second sweep while the first waits on its batch');
  store.releaseAll();
  await waitFor(() => store.calls === 2 || null, { timeoutMs: 5_000, message: 'the next batch of the same sweep' });
  sweeper.stop();
  store.releaseAll();
  const after = Date.now() + 100;
  await waitFor(() => Date.now() > after || null, { timeoutMs: 5_000, message: 'a few periods after stop' });
  t.is(store.calls, 2, 'no batch after stop()');
});
