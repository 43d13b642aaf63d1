/**
 * A server that dies between a claim and the join of the claimed run's
 * channel (docs/reliability.md, "A server dies between a claim and a join").
 * Two `lanes server` processes on one PostgreSQL database; a `lanes worker`
 * process connected to the first through a frame-aware proxy
 * (slow-server-proxy.ts), the second named as its failover. The proxy puts
 * runs on each side of the window, then the first server is SIGKILLed:
 *
 * - handed, join lost: the claim reply reached the worker, its join of
 *   `run:<id>` never reached the server;
 * - handed, join reply lost: the join reached the server, its answer never
 *   reached the worker;
 * - never handed: the claim committed, but its reply never reached the
 *   worker (as when the server dies between the commit and the reply).
 *
 * A handed run is the worker's: it joins on the surviving server, reports
 * there and succeeds in its first attempt. A run never handed is the
 * server's: its lease lapses, and it is retried when attempts remain, or
 * `lost` (claimed, never started) with `max_attempts` 1.
 */
import test from 'ava';
import { WORKER_QUEUE_TOPIC } from '../../src/protocol/events.ts';
import { waitFor } from '../server/helpers.ts';
import { postgresDatabase, usePostgres } from '../server/store-harness.ts';
import { HOLD_FOR, fixturePlan, prepareAdaptorRepo, spawnWorker } from './process-cluster.ts';
import type { RunView } from './process-cluster.ts';
import { call, spawnServer } from './server-process.ts';
import type { PhoenixFrame } from './slow-server-proxy.ts';
import { SlowServerProxy } from './slow-server-proxy.ts';

void usePostgres().catch(() => undefined);

type Window = 'join lost' | 'join reply lost' | 'never handed';

/** The ids of the runs in a claim reply frame (`phx_reply` on worker:queue), or none. */
function claimedIds(frame: PhoenixFrame): string[] {
  if (frame[2] !== WORKER_QUEUE_TOPIC || frame[3] !== 'phx_reply') return [];
  const reply = frame[4] as { status?: unknown; response?: { runs?: unknown } } | null;
  const runs = reply?.status === 'ok' && Array.isArray(reply.response?.runs) ? (reply.response.runs as Array<{ id?: unknown }>) : [];
  return runs.map((run) => String(run.id));
}

/** The run id of a `run:<id>` topic, or null. */
function runOf(frame: PhoenixFrame): string | null {
  return frame[2].startsWith('run:') ? frame[2].slice(4) : null;
}

test('a server SIGKILLed between claim and join: handed runs finish on the survivor in one attempt; a reply never delivered is the lease\'s', async (t) => {
  t.timeout(150_000);
  const db = await postgresDatabase();
  const [one, two] = [await spawnServer(t, db), await spawnServer(t, db)];
  const proxy = await SlowServerProxy.start(t, one.port);
  const repoDir = await prepareAdaptorRepo(t);
  const worker = spawnWorker(t, { lightningUrl: `${proxy.workerUrl},${two.workerUrl}`, workloops: '*:4', repoDir });
  await worker.waitForLog('joined worker:queue');

  // Which side of the window the next claimed run is put on, and where each run was put.
  let next: Window = 'join lost';
  const windowOf = new Map<string, Window>();
  const dropped = { joins: new Set<string>(), joinReplies: new Set<string>(), claimReplies: new Set<string>() };
  proxy.dropToWorker = (frame) => {
    const ids = claimedIds(frame);
    if (ids.length > 0) {
      for (const id of ids) windowOf.set(id, next);
      if (next !== 'never handed') return false;
      for (const id of ids) dropped.claimReplies.add(id);
      return true;
    }
    const runId = runOf(frame);
    if (runId === null || windowOf.get(runId) !== 'join reply lost' || frame[3] !== 'phx_reply') return false;
    dropped.joinReplies.add(runId);
    return true;
  };
  proxy.dropToServer = (frame) => {
    const runId = runOf(frame);
    if (runId === null || windowOf.get(runId) !== 'join lost' || frame[3] !== 'phx_join') return false;
    dropped.joins.add(runId);
    return true;
  };

  // The job holds 300 ms, so a run is still executing when its server dies.
  const plan = fixturePlan(HOLD_FOR);
  const submit = async (maxAttempts: number): Promise<string> =>
    (await call<{ id: string }>(one, 'POST', '/api/runs', { plan, input: { holdMs: 300 }, max_attempts: maxAttempts })).id;

  const joinLost = await submit(1);
  await waitFor(() => dropped.joins.has(joinLost), { timeoutMs: 30_000, message: 'the join of the first run to be lost' });
  next = 'join reply lost';
  const joinReplyLost = await submit(1);
  await waitFor(() => dropped.joinReplies.has(joinReplyLost), { timeoutMs: 30_000, message: 'the join reply of the second run to be lost' });
  next = 'never handed';
  // Both queued while the queue is suspended, so that one claim takes them together: a claim whose
  // reply is lost keeps its slots promised, and a second claim could not go out.
  await call(one, 'POST', '/api/queues/default/suspend');
  const neverHandedOnce = await submit(1);
  const neverHandedTwice = await submit(2);
  await call(one, 'POST', '/api/queues/default/resume');
  await waitFor(() => dropped.claimReplies.has(neverHandedOnce) && dropped.claimReplies.has(neverHandedTwice), {
    timeoutMs: 30_000,
    message: 'the claim replies of the last two runs to be lost',
  });
  t.deepEqual([...windowOf.values()].sort(), ['join lost', 'join reply lost', 'never handed', 'never handed']);

  await one.kill();
  await worker.waitForLog('reconnecting to the next server');

  const ids = [joinLost, joinReplyLost, neverHandedOnce, neverHandedTwice];
  const views = new Map<string, RunView>();
  await waitFor(
    async () => {
      for (const id of ids) views.set(id, await call<RunView>(two, 'GET', `/api/runs/${id}`));
      return [...views.values()].every((view) => ['success', 'failed', 'crashed', 'killed', 'cancelled', 'exception', 'lost'].includes(view.state));
    },
    { timeoutMs: 120_000, intervalMs: 500, message: 'every run to end on the surviving server' },
  );
  const summary = (id: string): Pick<RunView, 'state' | 'attempts' | 'error_type'> => {
    const { state, attempts, error_type } = views.get(id)!;
    return { state, attempts, error_type };
  };
  // Handed to the worker: finished on the survivor, reported there, in the attempt the dead server gave.
  t.deepEqual(summary(joinLost), { state: 'success', attempts: 1, error_type: null }, 'handed, join lost');
  t.deepEqual(summary(joinReplyLost), { state: 'success', attempts: 1, error_type: null }, 'handed, join reply lost');
  // Never handed: the server's, through the lease; with one attempt allowed it is lost, never started.
  t.deepEqual(summary(neverHandedOnce), { state: 'lost', attempts: 1, error_type: 'LostError' }, 'never handed, max_attempts 1');
  t.is(views.get(neverHandedOnce)!.history[0]?.started_at, null);
  t.deepEqual(summary(neverHandedTwice), { state: 'success', attempts: 2, error_type: null }, 'never handed, max_attempts 2');
  // The worker never heard of the runs whose claim replies were lost, and started the others once.
  const claimedHere = worker.lines.filter((line) => line.msg === 'run claimed').map((line) => String(line['runId']));
  t.deepEqual(claimedHere.filter((id) => id === joinLost || id === joinReplyLost).sort(), [joinLost, joinReplyLost].sort());
  t.false(claimedHere.filter((id) => id === neverHandedOnce).length > 0);
  t.is(claimedHere.filter((id) => id === neverHandedTwice).length, 1, 'the retried run, claimed from the survivor');
});
