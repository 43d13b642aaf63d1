/**
 * Several servers on one PostgreSQL database are one queue: a run submitted
 * to one wakes the workers of another, a run token signed by one opens the
 * run channel on another, a `?wait` held by one is answered when the run
 * ends through another, and a cancel on one reaches the worker connected to
 * another. Real servers, a real PostgreSQL, the real phoenix client.
 */
import test from 'ava';
import type { ExecutionContext } from 'ava';
import pg from 'pg';
import { CAPABILITY_RUN_CANCEL, RUN_CANCEL, WORKER_QUEUE_TOPIC, importRunPublicKey, verifyRunToken } from '../../src/protocol/index.ts';
import type { LanesServer } from '../../src/server/index.ts';
import { api, claim, completeRunHappily, connectWorker, join, joinQueue, joinRun, nextPush, simplePlan, startServer, submitRun, waitFor } from './helpers.ts';
import { postgresDatabase, usePostgres } from './store-harness.ts';

void usePostgres().catch(() => undefined);

async function twoReplicas(t: ExecutionContext, dbPath?: string): Promise<[LanesServer, LanesServer]> {
  dbPath ??= await postgresDatabase();
  const one = await startServer(t, { dbPath, workAvailableDebounceMs: 0 });
  const two = await startServer(t, { dbPath, workAvailableDebounceMs: 0 });
  return [one, two];
}

test('a run submitted to one replica wakes a worker on the other, whose claim gets it', async (t) => {
  const [one, two] = await twoReplicas(t);
  const socket = await connectWorker(t, two);
  const { channel } = await joinQueue(socket, { '*': 1 });
  const woken = nextPush(channel, 'work-available', 10_000);
  const id = await submitRun(one, { queue: 'remote' });
  await woken;
  t.deepEqual((await claim(channel, ['*'], 1)).map((run) => run.id), [id]);
});

test('a run token from one replica opens the run channel on the other; ?wait on the first is answered', async (t) => {
  const [one, two] = await twoReplicas(t);
  const waited = api<{ state: string; id: string }>(one, 'POST', '/api/runs?wait=20', { plan: simplePlan(), queue: 'waited' });
  const socketOne = await connectWorker(t, one);
  const { channel } = await joinQueue(socketOne, { waited: 1 });
  let claimed = await claim(channel, ['waited'], 1);
  for (let i = 0; claimed.length === 0 && i < 50; i += 1) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    claimed = await claim(channel, ['waited'], 1);
  }
  const [run] = claimed;
  if (!run) throw new Error('nothing claimed');
  // The worker's connection moves to the other replica (failover) and rejoins with its token.
  const socketTwo = await connectWorker(t, two);
  const runChannel = await joinRun(socketTwo, run);
  await completeRunHappily(runChannel, run.id);
  const answer = await waited;
  t.is(answer.status, 201);
  t.is(answer.body.id, run.id);
  t.is(answer.body.state, 'success');
});

test('a cancel through one replica is pushed to the worker holding the run on the other', async (t) => {
  const [one, two] = await twoReplicas(t);
  const socket = await connectWorker(t, two, { workerId: 'holder' });
  const joined = await join(socket, WORKER_QUEUE_TOPIC, { capacity: 1, queues: { '*': 1 }, capabilities: [CAPABILITY_RUN_CANCEL] });
  if (joined.status !== 'ok') throw new Error('join failed');
  const id = await submitRun(one);
  const [run] = await claim(joined.channel, ['*'], 1);
  t.is(run?.id, id);
  const pushed = nextPush<{ run_id: string }>(joined.channel, RUN_CANCEL, 10_000);
  t.is((await api(one, 'POST', `/api/runs/${id}/cancel`)).status, 200);
  t.deepEqual(await pushed, { run_id: id });
});

/** `lanes_run_tokens_total` by `signed`. */
async function tokenCounts(server: LanesServer): Promise<{ ahead: number; at_claim: number }> {
  const { values } = await server.metrics.runTokens.get();
  const count = (signed: string) => values.find((value) => value.labels['signed'] === signed)?.value ?? 0;
  return { ahead: count('ahead'), at_claim: count('at_claim') };
}

test('each replica has its own pool of pre-made run identities: a run submitted on one and claimed on the other is signed at the claim there', async (t) => {
  const dbPath = await postgresDatabase();
  const one = await startServer(t, { dbPath, presignedTokens: 2 });
  const two = await startServer(t, { dbPath, presignedTokens: 2 });
  const poolOf = async (server: LanesServer) => (await server.metrics.registry.getSingleMetric('lanes_run_token_pool')?.get())?.values[0]?.value ?? 0;
  await waitFor(async () => (await poolOf(one)) === 2 && (await poolOf(two)) === 2, { message: 'both pools to fill' });
  const socket = await connectWorker(t, two);
  const { channel } = await joinQueue(socket, { '*': 1 });
  const id = await submitRun(one);
  t.is(await poolOf(one), 1, 'the run took an identity of the replica it was submitted to');
  const [run] = await claim(channel, ['*'], 1);
  if (run === undefined) return t.fail('nothing claimed');
  t.is(run.id, id);
  t.deepEqual(await tokenCounts(two), { ahead: 0, at_claim: 1 });
  t.deepEqual(await tokenCounts(one), { ahead: 0, at_claim: 0 });
  t.is((await verifyRunToken(await importRunPublicKey(two.publicKeyPem), run.token)).runId, id);
  // A run submitted where it is claimed uses that replica's identity.
  const local = await submitRun(two);
  const [second] = await claim(channel, ['*'], 1);
  t.is(second?.id, local);
  t.deepEqual(await tokenCounts(two), { ahead: 1, at_claim: 1 });
});

test('one idempotency key sent to two replicas at once makes one run: every answer names it', async (t) => {
  const [one, two] = await twoReplicas(t);
  for (let round = 0; round < 5; round += 1) {
    const body = { plan: simplePlan(), queue: 'once', idempotency_key: `key-${round}` };
    const answers = await Promise.all([one, two, one, two].map((server) => api<{ id: string }>(server, 'POST', '/api/runs', body)));
    t.deepEqual(answers.map((answer) => answer.status).sort(), [200, 200, 200, 201], `round ${round}`);
    t.is(new Set(answers.map((answer) => answer.body.id)).size, 1);
  }
  t.is((await api<{ runs: unknown[] }>(one, 'GET', '/api/runs?queue=once')).body.runs.length, 5);
});

/** Process ids of the database's LISTEN connections (one per server). */
async function listenerPids(client: pg.Client): Promise<number[]> {
  const result = await client.query<{ pid: number }>(
    `SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN %' AND pid <> pg_backend_pid() ORDER BY pid`,
  );
  return result.rows.map((row) => row.pid);
}

test('a LISTEN connection terminated by PostgreSQL reconnects: a submit on one replica still wakes a worker on the other', async (t) => {
  const dbPath = await postgresDatabase();
  const [one, two] = await twoReplicas(t, dbPath);
  const admin = new pg.Client({ connectionString: dbPath });
  await admin.connect();
  t.teardown(() => admin.end());
  const socket = await connectWorker(t, two);
  const { channel } = await joinQueue(socket, { '*': 1 });

  const before = await listenerPids(admin);
  t.is(before.length, 2, 'one LISTEN connection per replica');
  await admin.query('SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) AS pid', [before]);
  // Both servers reconnect (backing off from 100 ms): wait for two LISTEN connections that are new ones.
  const deadline = Date.now() + 20_000;
  let after = await listenerPids(admin);
  while (after.length !== 2 || after.some((pid) => before.includes(pid))) {
    if (Date.now() > deadline) throw new Error(`LISTEN connections not back: before ${before.join(',')}, now ${after.join(',')}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
    after = await listenerPids(admin);
  }

  // Twice: the first wake may come from the resync after the reconnect; the second only from a NOTIFY.
  for (const queue of ['first', 'second']) {
    const woken = nextPush(channel, 'work-available', 10_000);
    const id = await submitRun(one, { queue });
    await woken;
    t.deepEqual((await claim(channel, ['*'], 1)).map((run) => run.id), [id], queue);
  }
});
