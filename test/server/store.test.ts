/**
 * The store suite: the same tests on the SQLite store and on the PostgreSQL
 * store (a real PostgreSQL server, started for this file). What the server
 * relies on from storage is proven here once per store.
 */
import { randomUUID } from 'node:crypto';
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { PostgresStore } from '../../src/server/store/postgres-store.ts';
import type { ClaimRequest, NewRun, Store, StoreKind } from '../../src/server/store/store.ts';
import { STORE_KINDS, openTestStore, postgresDatabase, usePostgres } from './store-harness.ts';
import { testLogger } from './helpers.ts';

// Start the cluster while tests are declared, so its stop is registered.
void usePostgres().catch(() => undefined);

const PLAN = { starting_node_id: 'job-1', triggers: [], jobs: [{ id: 'job-1', body: 'fn(s => s)', adaptor: '@openfn/language-common@1.0.0' }], edges: [] };
const T0 = 1_700_000_000_000;

function run(overrides: Partial<NewRun> = {}): NewRun {
  return {
    id: randomUUID(), queue: 'default', priority: 0, maxAttempts: 1, idempotencyKey: null,
    plan: PLAN, inputJson: '{"data":{}}', runTimeoutMs: 60_000, now: T0, ...overrides,
  };
}

function claimOf(chain: string[], demand: number, overrides: Partial<ClaimRequest> = {}): ClaimRequest {
  return { chain, demand, workerId: 'w1', workerName: 'worker one', now: T0 + 1_000, graceMs: 5_000, heartbeatLeaseMs: null, ...overrides };
}

const outcome = (state: 'success' | 'failed' | 'crashed' | 'lost', now: number) =>
  ({ state, reason: state === 'success' ? 'success' : 'fail', errorType: null, errorMessage: null, now });

function both(title: string, body: (t: ExecutionContext, store: Store, kind: StoreKind) => Promise<void>): void {
  for (const kind of STORE_KINDS) {
    test(`${kind} › ${title}`, async (t) => {
      const store = await openTestStore(t, kind);
      t.is(store.kind, kind);
      await body(t, store, kind);
    });
  }
}

both('a run is stored with its input dataclip and found by id and by idempotency key', async (t, store) => {
  const stored = await store.insertRun(run({ idempotencyKey: 'key-1', priority: 3 }));
  t.is(stored.state, 'available');
  t.is(stored.priority, 3);
  t.is(stored.plan.id, stored.id);
  t.is(stored.availableAt, T0);
  t.deepEqual(await store.getRun(stored.id), stored, 'the record insertRun returns is the row as read back');
  t.is((await store.getRunByIdempotencyKey('key-1'))?.id, stored.id);
  t.is(await store.getRunByIdempotencyKey('key-2'), undefined);
  t.is((await store.getDataclip(stored.dataclipId))?.body, '{"data":{}}');
  await t.throwsAsync(store.insertRun(run({ idempotencyKey: 'key-1' })));
});

both('claims take named queues in chain order, then any queue by priority then age; demand caps them', async (t, store) => {
  const ids: Record<string, string> = {};
  const add = async (name: string, queue: string, priority: number, now: number): Promise<void> => {
    ids[name] = (await store.insertRun(run({ queue, priority, now }))).id;
  };
  await add('other1', 'zzz', 0, T0);
  await add('b1', 'b', 0, T0 + 1);
  await add('other2', 'yyy', 5, T0 + 2);
  await add('a1', 'a', 0, T0 + 3);
  await add('b2', 'b', 10, T0 + 4);
  await add('a2', 'a', 0, T0 + 5);
  const first = await store.claim(claimOf(['a', 'b', '*'], 4));
  t.deepEqual(first.map((row) => row.id), [ids['a1'], ids['a2'], ids['b2'], ids['b1']]);
  t.true(first.every((row) => row.attempt === 1));
  const rest = await store.claim(claimOf(['a', 'b', '*'], 10));
  t.deepEqual(rest.map((row) => row.id), [ids['other2'], ids['other1']]);
  t.deepEqual(await store.claim(claimOf(['*'], 10)), []);
  const claimed = await store.getRun(ids['a1'] ?? '');
  t.is(claimed?.state, 'claimed');
  t.is(claimed?.workerId, 'w1');
  t.is(claimed?.leaseMode, 'timeout');
  t.is(claimed?.leaseExpiresAt, T0 + 1_000 + 60_000 + 5_000);
  t.is((await store.getAttempts(ids['a1'] ?? '')).length, 1);
});

both('a strict chain never takes other queues; suspended queues are skipped until resumed', async (t, store) => {
  const other = await store.insertRun(run({ queue: 'other' }));
  t.deepEqual(await store.claim(claimOf(['fast'], 5)), []);
  await store.setQueueSuspended('manual', true, T0);
  t.true(await store.isQueueSuspended('manual'));
  const manual = await store.insertRun(run({ queue: 'manual' }));
  t.deepEqual((await store.claim(claimOf(['manual'], 5))).map((row) => row.id), []);
  t.deepEqual((await store.claim(claimOf(['manual', '*'], 5))).map((row) => row.id), [other.id]);
  await store.setQueueSuspended('manual', false, T0);
  t.deepEqual((await store.claim(claimOf(['*'], 5))).map((row) => row.id), [manual.id]);
});

both('a memory claim takes runs in order while they fit the free memory, skips runs too big for the lane, and stops at the first that does not fit', async (t, store) => {
  const withMemory = (mb: number | undefined, now: number, queue = 'default') =>
    run({ queue, now, plan: mb === undefined ? PLAN : { ...PLAN, options: { run_memory_limit_mb: mb } } });
  const huge = await store.insertRun(withMemory(5000, T0));
  const a = await store.insertRun(withMemory(300, T0 + 1));
  const plain = await store.insertRun(withMemory(undefined, T0 + 2));
  const big = await store.insertRun(withMemory(600, T0 + 3));
  const small = await store.insertRun(withMemory(50, T0 + 4, 'fast'));
  const memory = { freeMb: 700, laneMb: 1000, defaultRunMb: 200 };
  const first = await store.claim(claimOf(['default', '*'], 5, { memory }));
  // 300 + 200 fit in 700; the 600 MB run does not fit what is left and ends the claim, so the 50 MB run behind it waits.
  t.deepEqual(first.map((row) => [row.id, row.memoryMb]), [[a.id, 300], [plain.id, 200]]);
  const second = await store.claim(claimOf(['default', '*'], 5, { memory }));
  t.deepEqual(second.map((row) => [row.id, row.memoryMb]), [[big.id, 600], [small.id, 50]]);
  t.deepEqual(await store.claim(claimOf(['*'], 5, { memory })), [], 'the 5000 MB run never fits a 1000 MB lane');
  t.is((await store.getRun(huge.id))?.state, 'available');
  t.is((await store.getRun(big.id))?.state, 'claimed');
  t.deepEqual((await store.claim(claimOf(['*'], 5))).map((row) => row.id), [huge.id], 'a claim without memory takes it');
});

both('a delayed run (not_before) is not claimable before its time and is listed as pending', async (t, store) => {
  const later = await store.insertRun(run({ notBefore: T0 + 60_000 }));
  t.is(later.availableAt, T0 + 60_000);
  t.deepEqual(await store.claim(claimOf(['*'], 5, { now: T0 + 59_999 })), []);
  t.deepEqual(await store.queuesWithAvailableRuns(T0 + 59_999), []);
  t.deepEqual((await store.pendingRetries(T0)).map((p) => [p.id, p.availableAt]), [[later.id, T0 + 60_000]]);
  t.deepEqual((await store.claim(claimOf(['*'], 5, { now: T0 + 60_000 }))).map((row) => row.id), [later.id]);
});

both('an attempt moves claimed → started → finished once; late and stale writes change nothing', async (t, store) => {
  const { id } = await store.insertRun(run({ maxAttempts: 2 }));
  await store.claim(claimOf(['*'], 1));
  await store.setTokenHash(id, 1, 'hash-1');
  t.is((await store.getRun(id))?.tokenHash, 'hash-1');
  t.false(await store.markStarted(id, 2, T0 + 2_000, null));
  t.true(await store.markStarted(id, 1, T0 + 2_000, { node: '24' }));
  t.false(await store.markStarted(id, 1, T0 + 2_000, null));
  t.deepEqual((await store.getRun(id))?.versions, { node: '24' });
  // Requeued for a retry, then claimed again: the first attempt's late writes are stale.
  t.true(await store.requeue(id, 1, outcome('crashed', T0 + 3_000), T0 + 4_000));
  t.false(await store.requeue(id, 1, outcome('crashed', T0 + 3_000), T0 + 4_000));
  t.deepEqual(await store.claim(claimOf(['*'], 1, { now: T0 + 3_999 })), []);
  const second = await store.claim(claimOf(['*'], 1, { now: T0 + 4_000, heartbeatLeaseMs: 10_000 }));
  t.deepEqual(second.map((row) => row.attempt), [2]);
  t.is((await store.getRun(id))?.leaseMode, 'heartbeat');
  t.false(await store.finishRun(id, 1, outcome('success', T0 + 5_000), false));
  t.true(await store.finishRun(id, 2, { ...outcome('success', T0 + 5_000), finalState: { data: 1 } }, false));
  t.false(await store.finishRun(id, 2, outcome('failed', T0 + 6_000), true));
  const done = await store.getRun(id);
  t.is(done?.state, 'success');
  t.deepEqual(done?.finalState, { data: 1 });
  t.is(done?.finishedAt, T0 + 5_000);
  t.deepEqual((await store.getAttempts(id)).map((a) => [a.attempt, a.state]), [[1, 'crashed'], [2, 'success']]);
});

both('leases: expired ones are found, heartbeats extend them, a restart renews heartbeat leases', async (t, store) => {
  const beating = await store.insertRun(run());
  const timed = await store.insertRun(run({ now: T0 + 1 }));
  await store.claim(claimOf(['*'], 1, { heartbeatLeaseMs: 1_000 }));
  await store.claim(claimOf(['*'], 1));
  t.deepEqual((await store.expiredLeases(T0 + 2_000)).map((r) => r.id), [beating.id]);
  await store.extendLease(beating.id, 1, T0 + 10_000, null);
  t.deepEqual(await store.expiredLeases(T0 + 2_000), []);
  // Without a mode, only heartbeat leases move.
  await store.extendLease(timed.id, 1, T0 + 1, null);
  t.is((await store.getRun(timed.id))?.leaseExpiresAt, T0 + 1_000 + 65_000);
  t.is(await store.renewHeartbeatLeases(T0 + 20_000), 1);
  t.is((await store.getRun(beating.id))?.leaseExpiresAt, T0 + 20_000);
  t.deepEqual((await store.expiredLeases(T0 + 70_000)).map((r) => r.id).sort(), [beating.id, timed.id].sort());
  t.deepEqual(await store.activeRunsByWorker(), new Map([['w1', [beating.id, timed.id]]]));
});

both('listing is newest first and pages by keyset, with filters', async (t, store) => {
  const ids: string[] = [];
  for (let i = 0; i < 7; i += 1) ids.push((await store.insertRun(run({ queue: i % 2 === 0 ? 'even' : 'odd', now: T0 + i }))).id);
  const newestFirst = [...ids].reverse();
  const page1 = await store.listRuns({ limit: 3 });
  t.deepEqual(page1.map((r) => r.id), newestFirst.slice(0, 3));
  const page2 = await store.listRuns({ limit: 3, beforeSeq: page1.at(-1)?.seq ?? 0 });
  t.deepEqual(page2.map((r) => r.id), newestFirst.slice(3, 6));
  const page3 = await store.listRuns({ limit: 3, beforeSeq: page2.at(-1)?.seq ?? 0 });
  t.deepEqual(page3.map((r) => r.id), newestFirst.slice(6));
  const even = await store.listRuns({ limit: 10, queue: 'even' });
  t.deepEqual(even.map((r) => r.id), [ids[6], ids[4], ids[2], ids[0]]);
  t.deepEqual((await store.listRuns({ limit: 2, queue: 'even', beforeSeq: even[1]?.seq ?? 0 })).map((r) => r.id), [ids[2], ids[0]]);
  await store.claim(claimOf(['odd'], 1));
  t.deepEqual((await store.listRuns({ limit: 10, state: 'claimed' })).map((r) => r.id), [ids[1]]);
  t.deepEqual(await store.listRuns({ limit: 10, deadLetter: true }), []);
});

both('retention deletes finished runs and all that hangs off them, in batches, and keeps the rest', async (t, store) => {
  const old: string[] = [];
  for (let i = 0; i < 5; i += 1) {
    const { id } = await store.insertRun(run({ now: T0 + i }));
    old.push(id);
  }
  const waiting = await store.insertRun(run({ now: T0 + 10 }));
  const claimed = await store.claim(claimOf(['*'], 5));
  t.is(claimed.length, 5);
  for (const row of claimed) {
    await store.markStarted(row.id, 1, T0 + 2_000, null);
    await store.insertStep({ id: `step-${row.id}`, runId: row.id, attempt: 1, jobId: 'job-1', inputDataclipId: null, startedAt: T0 + 2_000 });
    await store.insertLog({ runId: row.id, attempt: 1, stepId: null, level: 'info', source: 'JOB', message: ['hi'], timestamp: '1' });
    await store.insertDataclip(`out-${row.id}`, row.id, 'step_result', '{}', T0 + 2_000);
    await store.putEventReply(row.id, 'run:start:1', {});
  }
  // Four finish long ago, one is still running.
  for (const id of old.slice(0, 4)) t.true(await store.finishRun(id, 1, outcome('success', T0 + 3_000), false));
  t.is(await store.deleteFinishedBefore(T0 + 3_000, 10), 0);
  t.is(await store.deleteFinishedBefore(T0 + 3_001, 3), 3);
  t.is(await store.deleteFinishedBefore(T0 + 3_001, 3), 1);
  t.is(await store.deleteFinishedBefore(T0 + 3_001, 3), 0);
  for (const id of old.slice(0, 4)) {
    t.is(await store.getRun(id), undefined);
    t.deepEqual(await store.getLogs(id), []);
    t.deepEqual(await store.getSteps(id), []);
    t.is(await store.getDataclip(`out-${id}`), undefined);
    t.is(await store.getEventReply(id, 'run:start:1'), undefined);
    t.deepEqual(await store.getAttempts(id), []);
  }
  const running = old[4] ?? '';
  t.is((await store.getRun(running))?.state, 'started');
  t.is((await store.getLogs(running)).length, 1);
  t.is((await store.getRun(waiting.id))?.state, 'available');
});

both('steps, logs, dataclips, event replies, credentials, webhook responses and workers round-trip', async (t, store) => {
  const { id } = await store.insertRun(run());
  await store.insertStep({ id: 's1', runId: id, attempt: 1, jobId: 'job-1', inputDataclipId: 'in', startedAt: T0 });
  await store.completeStep({ id: 's1', outputDataclipId: 'out', outputDataclipError: null, reason: 'success', errorType: null, errorMessage: null, mem: { job: 1, system: 2 }, durationMs: 1.5, threadId: 3, finishedAt: T0 + 5 });
  const step = await store.getStep('s1');
  t.like(step, { runId: id, jobId: 'job-1', outputDataclipId: 'out', durationMs: 1.5, threadId: 3, finishedAt: T0 + 5, mem: { job: 1, system: 2 } });
  const first = await store.insertLog({ runId: id, attempt: 1, stepId: 's1', level: 'info', source: 'JOB', message: ['one', { n: 1 }], timestamp: '10' });
  await store.insertLog({ runId: id, attempt: 1, stepId: null, level: 'warn', source: 'R/T', message: ['two'], timestamp: '11' });
  t.deepEqual((await store.getLogs(id)).map((l) => [l.id === first, l.message]), [[true, ['one', { n: 1 }]], [false, ['two']]]);
  await store.insertDataclip('d1', id, 'step_result', '{"a":1}', T0);
  await store.insertDataclip('d1', id, 'step_result', '{"a":2}', T0);
  t.is((await store.getDataclip('d1'))?.body, '{"a":1}');
  await store.putEventReply(id, 'k', { first: true });
  await store.putEventReply(id, 'k', { first: false });
  t.deepEqual(await store.getEventReply(id, 'k'), { first: true });
  await store.putCredential('c1', '{"user":"a"}', T0);
  await store.putCredential('c1', '{"user":"b"}', T0 + 1);
  t.deepEqual(await store.getCredential('c1'), { user: 'b' });
  t.is(await store.getCredential('nope'), undefined);
  await store.setWebhookResponseOnce(id, { status: 201, body: { a: 1 } });
  await store.setWebhookResponseOnce(id, { status: 500 });
  t.deepEqual((await store.getRun(id))?.webhookResponse, { status: 201, body: { a: 1 } });
  await store.upsertWorker({ id: 'w1', name: null, capacity: 2, queues: { '*': 2 }, connectedAt: T0, lastSeenAt: T0 });
  await store.touchWorker('w1', 'named', T0 + 1);
  await store.markWorkerDisconnected('w1', T0 + 2);
  t.is(await store.putSettingOnce('s', 'first'), 'first');
  t.is(await store.putSettingOnce('s', 'second'), 'first');
  const stats = await store.queueStats();
  t.deepEqual(stats, [{ name: 'default', suspended: false, counts: { available: 1 }, oldestAvailableAt: T0 }]);
  t.deepEqual(await store.countsByQueueAndState(), [{ queue: 'default', state: 'available', count: 1 }]);
  t.true(await store.ping());
});

both('a transaction is all or nothing, and calls outside it wait for it instead of joining it', async (t, store) => {
  await t.throwsAsync(
    store.transaction(async (tx) => {
      await tx.insertRun(run({ id: 'rolled-back' }));
      throw new Error('boom');
    }),
    { message: 'boom' },
  );
  t.is(await store.getRun('rolled-back'), undefined);
  // An outside write issued while a transaction is open does not share its fate.
  let outside: Promise<unknown> | undefined;
  await t.throwsAsync(
    store.transaction(async (tx) => {
      await tx.insertRun(run({ id: 'inside' }));
      outside = store.insertRun(run({ id: 'outside' }));
      await tx.getRun('inside');
      throw new Error('boom');
    }),
  );
  await outside;
  t.is(await store.getRun('inside'), undefined);
  t.is((await store.getRun('outside'))?.id, 'outside');
});

both('the dashboard reads: each attempt with the lane that claimed it, its open step, ends per queue; a dead letter retried', async (t, store) => {
  const fast = await store.insertRun(run({ queue: 'fast_lane' }));
  const slow = await store.insertRun(run({ queue: 'manual', maxAttempts: 1 }));
  t.deepEqual((await store.claim(claimOf(['fast_lane'], 1))).map((row) => row.id), [fast.id]);
  t.deepEqual((await store.claim(claimOf(['manual', '*'], 1, { now: T0 + 2_000 }))).map((row) => row.id), [slow.id]);
  await store.markStarted(slow.id, 1, T0 + 2_100, null);
  await store.insertStep({ id: 'step-1', runId: slow.id, attempt: 1, jobId: 'job-1', inputDataclipId: null, startedAt: T0 + 2_200 });
  await store.finishRun(fast.id, 1, outcome('success', T0 + 3_000), false);

  const attempts = await store.recentAttempts(T0, 10);
  t.deepEqual(
    attempts.map((attempt) => [attempt.runId, attempt.lane, attempt.queue, attempt.state, attempt.step, attempt.finishedAt]),
    [
      [fast.id, 'fast_lane', 'fast_lane', 'success', null, T0 + 3_000],
      [slow.id, 'manual>*', 'manual', 'started', 'job-1', null],
    ],
  );
  // Ended attempts claimed before `since` drop out; attempts in flight never do.
  t.deepEqual((await store.recentAttempts(T0 + 1_500, 10)).map((attempt) => attempt.runId), [slow.id]);
  t.deepEqual([...(await store.finishedSince(T0 + 2_500))], [['fast_lane', 1]]);
  t.deepEqual([...(await store.finishedSince(T0 + 3_500))], []);

  t.false(await store.retryDeadLetter(slow.id, T0 + 4_000));
  await store.finishRun(slow.id, 1, outcome('crashed', T0 + 4_000), true);
  t.true((await store.getRun(slow.id))?.deadLetter);
  t.true(await store.retryDeadLetter(slow.id, T0 + 5_000));
  const retried = await store.getRun(slow.id);
  t.is(retried?.state, 'available');
  t.false(retried?.deadLetter);
  t.is(retried?.maxAttempts, 2);
  t.false(await store.retryDeadLetter(slow.id, T0 + 5_000));
  t.deepEqual((await store.claim(claimOf(['*'], 1, { now: T0 + 6_000 }))).map((row) => [row.id, row.attempt]), [[slow.id, 2]]);
  t.is((await store.recentAttempts(T0, 10)).find((attempt) => attempt.runId === slow.id && attempt.attempt === 2)?.memoryMb, null);

  // A memory claim records what it counted for each run: the plan's need, else the claim's default.
  const big = await store.insertRun(run({ queue: 'manual', plan: { ...PLAN, options: { run_memory_limit_mb: 300 } } }));
  const small = await store.insertRun(run({ queue: 'manual' }));
  const memory = { freeMb: 1_000, laneMb: 1_000, defaultRunMb: 200 };
  t.deepEqual((await store.claim(claimOf(['manual'], 2, { now: T0 + 7_000, memory }))).map((row) => [row.id, row.memoryMb]), [[big.id, 300], [small.id, 200]]);
  const counted = (await store.recentAttempts(T0, 10)).filter((attempt) => attempt.runId === big.id || attempt.runId === small.id);
  t.deepEqual(counted.map((attempt) => [attempt.runId, attempt.lane, attempt.memoryMb]), [[big.id, 'manual', 300], [small.id, 'manual', 200]]);
});

both('after close every call rejects and ping says false', async (t, store) => {
  await store.close();
  t.false(store.isOpen);
  t.false(await store.ping());
  await t.throwsAsync(store.getRun('x'), { message: /closed/ });
  await store.close();
});

test('postgres › concurrent claims on two replicas never hand out one run twice', async (t) => {
  const url = await postgresDatabase();
  const [one, two] = [await openTestStore(t, 'postgres', url), await openTestStore(t, 'postgres', url)];
  const total = 200;
  for (let i = 0; i < total; i += 1) await one.insertRun(run({ queue: i % 2 === 0 ? 'a' : 'b', now: T0 + i }));
  const seen = new Map<string, number>();
  const claimer = async (store: Store, workerId: string, chain: string[]): Promise<void> => {
    for (;;) {
      const rows = await store.claim(claimOf(chain, 3, { workerId }));
      if (rows.length === 0) return;
      for (const row of rows) seen.set(row.id, (seen.get(row.id) ?? 0) + 1);
    }
  };
  // Eight lanes on each replica, claiming at once on separate connections.
  await Promise.all([
    ...Array.from({ length: 8 }, (_, i) => claimer(one, `one-${i}`, i % 2 === 0 ? ['a', '*'] : ['*'])),
    ...Array.from({ length: 8 }, (_, i) => claimer(two, `two-${i}`, i % 2 === 0 ? ['b', '*'] : ['*'])),
  ]);
  t.is(seen.size, total);
  t.true([...seen.values()].every((count) => count === 1));
  t.is((await one.listRuns({ limit: 1000, state: 'claimed' })).length, total);
});

test('postgres › two replicas starting at once on an empty database migrate it once', async (t) => {
  const url = await postgresDatabase();
  const stores = await Promise.all(Array.from({ length: 4 }, () => PostgresStore.open(url, testLogger())));
  t.teardown(() => Promise.all(stores.map((store) => store.close())));
  for (const store of stores) t.true(await store.ping());
  const first = stores[0];
  if (!first) throw new Error('no store');
  await first.insertRun(run({ id: 'after-migrate' }));
  t.is((await stores[3]?.getRun('after-migrate'))?.id, 'after-migrate');
});

test('postgres › a database that cannot be reached is one error naming the URL without its password', async (t) => {
  const cluster = await usePostgres();
  const error = await t.throwsAsync(PostgresStore.open(`postgres://lanes:s3cret@127.0.0.1:${cluster.port}/no_such_database`, testLogger()));
  t.regex(error?.message ?? '', /cannot open database postgres:\/\/lanes:\*\*\*@127\.0\.0\.1:\d+\/no_such_database/);
  t.notRegex(error?.message ?? '', /s3cret/);
});

both('a closed store refuses every call with STORE_CLOSED, inside a transaction too, and closes once', async (t, store) => {
  const stored = await store.insertRun(run());
  t.true(store.isOpen);
  await store.close();
  t.false(store.isOpen);
  await t.throwsAsync(store.getRun(stored.id), { message: 'the store is closed' });
  await t.throwsAsync(store.transaction(async (tx) => tx.getRun(stored.id)), { message: 'the store is closed' });
  await store.close();
  t.false(store.isOpen);
});
