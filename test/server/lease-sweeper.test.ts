/**
 * The lease sweeper's own loop (the sweep's effect on runs is covered by the
 * reliability tests): one sweep at a time however slow the store, and none
 * after stop(). The store here is a typed fake with only the two members the
 * sweeper reads, so a sweep can be held open.
 */
import test from 'ava';
import pino from 'pino';
import { LeaseSweeper } from '../../src/server/lease-sweeper.ts';
import type { RunLifecycle } from '../../src/server/run-lifecycle.ts';
import type { ServerMetrics } from '../../src/server/server-metrics.ts';
import type { Store } from '../../src/server/store/store.ts';
import { waitFor } from './helpers.ts';

class SlowStore {
  isOpen = true;
  calls = 0;
  #release: Array<() => void> = [];

  expiredLeases(): Promise<[]> {
    this.calls += 1;
    return new Promise((resolve) => this.#release.push(() => resolve([])));
  }

  releaseAll(): void {
    for (const release of this.#release.splice(0)) release();
  }
}

function sweeperOn(store: SlowStore): LeaseSweeper {
  return new LeaseSweeper({
    store: store as unknown as Store,
    lifecycle: {} as RunLifecycle,
    metrics: {} as ServerMetrics,
    intervalMs: 5,
    logger: pino({ level: 'silent' }),
  });
}

test('a sweep that outlasts the period is not stacked with the next; stop() ends the sweeps', async (t) => {
  const store = new SlowStore();
  const sweeper = sweeperOn(store);
  t.teardown(() => sweeper.stop());
  sweeper.start();
  sweeper.start();
  await waitFor(() => store.calls === 1 || null, { timeoutMs: 5_000, message: 'the first sweep' });
  // Many periods pass while the first sweep hangs: no second one starts.
  const periods = Date.now() + 100;
  await waitFor(() => Date.now() > periods || null, { timeoutMs: 5_000, message: 'a few periods' });
  t.is(store.calls, 1);
  store.releaseAll();
  await waitFor(() => store.calls >= 2 || null, { timeoutMs: 5_000, message: 'the next sweep once the first ended' });
  sweeper.stop();
  store.releaseAll();
  const stoppedAt = store.calls;
  const after = Date.now() + 100;
  await waitFor(() => Date.now() > after || null, { timeoutMs: 5_000, message: 'a few periods after stop' });
  t.is(store.calls, stoppedAt, 'no sweep after stop()');
  sweeper.stop();
  sweeper.start();
  t.is(store.calls, stoppedAt, 'a stopped sweeper does not start again');
});
