/**
 * Issue 12, item 1: signals as terminals and containers send them, to real
 * `lanes worker` processes started as process-group leaders.
 *
 * - Ctrl-C is SIGINT to the whole foreground group, `kill -TERM -PGID` is
 *   SIGTERM to it: the engine children must not get it (they are in their own
 *   session), so the worker drains exactly as on a signal to its pid alone.
 * - A second signal forces: the process is gone within 2 s.
 * - A stop while a claim is unanswered ends at once after "worker stopped"
 *   (no armed push timer keeps the process alive).
 */
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startServer, submitRun, waitFor } from '../server/helpers.ts';
import { HOLD_FOR, fixturePlan, getRun, prepareAdaptorRepo, spawnWorker, workerWithRunsInFlight } from './process-cluster.ts';
import { SlowServerProxy } from './slow-server-proxy.ts';

const LANES_BIN = fileURLToPath(new URL('../../bin/lanes.js', import.meta.url));

/** A Node older than 24 on PATH outside node_modules (the machine's own), if there is one. */
function olderSystemNode(): string | undefined {
  for (const dir of (process.env['PATH'] ?? '').split(delimiter)) {
    const candidate = join(dir, 'node');
    if (dir.includes('node_modules') || !existsSync(candidate)) continue;
    try {
      const major = Number(/^v(\d+)/.exec(execFileSync(candidate, ['--version'], { encoding: 'utf8' }))?.[1]);
      if (major < 24) return candidate;
    } catch {
      // Not runnable: look further.
    }
  }
  return undefined;
}

/** Sleeps until `state.holdUntil` (epoch ms). */
const HOLD = 'fn(state => new Promise(resolve => setTimeout(() => resolve(state), Math.max(0, state.holdUntil - Date.now()))))';

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  test(`${signal} to the worker's process group with four runs in flight drains them: every run succeeds, exit 0`, async (t) => {
    const { server, worker, ids } = await workerWithRunsInFlight(t);

    // The whole group, as a terminal's Ctrl-C or `kill -TERM -PGID` does.
    process.kill(-worker.pid, signal);
    const exit = await worker.exited;
    t.deepEqual(exit, { code: 0, signal: null }, 'the worker drains and exits 0');
    for (const id of ids) {
      const run = await getRun(server, id);
      t.is(run.state, 'success', `run ${id} finished during the drain: ${run.state} ${run.error_type ?? ''}`);
    }
    t.truthy(worker.lines.find((line) => line.msg === 'worker stopped'));
  });
}

test('a second signal forces the stop: the process exits within 2 s with runs still in flight', async (t) => {
  const server = await startServer(t, { leaseMs: 60_000, heartbeatIntervalMs: 500 });
  const repoDir = await prepareAdaptorRepo(t);
  const worker = spawnWorker(t, { lightningUrl: server.workerUrl, workloops: 'manual>*:2', repoDir, detached: true, extraArgs: ['--shutdown-timeout-seconds', '120'] });
  const workerId = await worker.workerId();
  await worker.waitForLog('joined worker:queue');
  const holdUntil = Date.now() + 120_000;
  const ids = await Promise.all([1, 2].map(() => submitRun(server, { queue: 'manual', plan: fixturePlan(HOLD), input: { holdUntil } })));
  await waitFor(async () => (await Promise.all(ids.map((id) => getRun(server, id)))).every((run) => run.state === 'started' && run.worker === workerId), {
    timeoutMs: 20_000,
    message: 'both runs started',
  });

  process.kill(-worker.pid, 'SIGTERM');
  await worker.waitForLog('worker draining');
  const forcedAt = Date.now();
  process.kill(-worker.pid, 'SIGTERM');
  const exit = await worker.exited;
  const tookMs = Date.now() - forcedAt;
  t.log(`exited ${tookMs} ms after the second signal`, exit);
  t.true(tookMs < 2_000, `exited within 2 s of the second signal (${tookMs} ms)`);
  // The engine's children die under the forced stop: expected, so not an error with a stack.
  const errors = worker.lines.filter((line) => Number(line['level']) >= 50 || JSON.stringify(line).includes('"stack"'));
  t.deepEqual(errors, [], 'no error or stack logged by the forced stop');
});

test('a stop while a claim is unanswered: "worker stopped", then the process exits at once', async (t) => {
  const server = await startServer(t, { leaseMs: 60_000, heartbeatIntervalMs: 500 });
  const proxy = await SlowServerProxy.start(t, server.port);
  const repoDir = await prepareAdaptorRepo(t);
  const worker = spawnWorker(t, {
    lightningUrl: `ws://127.0.0.1:${proxy.port}/worker`,
    workloops: 'manual>*:1',
    repoDir,
    detached: true,
    extraArgs: ['--shutdown-timeout-seconds', '1', '--claim-timeout', '3600'],
  });
  // The refs of the replies that reached the worker: a claim sent just before the hold, whose reply
  // was then held, is as unanswered as one sent after it (and the worker sends no other meanwhile).
  const answered = new Set<string>();
  let holding = false;
  proxy.rewrite = (frame) => {
    if (!holding && frame[3] === 'phx_reply') answered.add(String(frame[1]));
    return frame;
  };
  await worker.waitForLog('joined worker:queue');
  // From here the server's replies never reach the worker: the next claim stays unanswered.
  holding = true;
  proxy.hold();
  await submitRun(server, { queue: 'manual', plan: fixturePlan('fn(s => s)') });
  await waitFor(() => proxy.sent.some((frame) => frame[3] === 'claim' && !answered.has(String(frame[1]))), { timeoutMs: 10_000, message: 'a claim left unanswered by the hold' });

  process.kill(-worker.pid, 'SIGTERM');
  const stopped = await worker.waitForLog('worker stopped', undefined, 20_000);
  const stoppedAt = Date.now();
  const exit = await worker.exited;
  const lingeredMs = Date.now() - stoppedAt;
  t.log(`exited ${lingeredMs} ms after "worker stopped"`, stopped);
  t.is(exit.code, 0);
  t.true(lingeredMs < 2_000, `no armed claim timer keeps the stopped worker alive (${lingeredMs} ms)`);
});

const oldNode = olderSystemNode();
// Only meaningful where an older Node exists: on a Node-24-only machine bin/lanes.js never re-execs.
(oldNode === undefined ? test.skip : test)(`bin/lanes.js started by an older Node re-execs on the pinned one, forwards a group SIGINT once and a SIGTERM to its pid, and exits with the worker's code`, async (t) => {
  const server = await startServer(t, { leaseMs: 60_000, heartbeatIntervalMs: 500 });
  const repoDir = await prepareAdaptorRepo(t);
  for (const target of ['group', 'pid'] as const) {
    const worker = spawnWorker(t, { lightningUrl: server.workerUrl, workloops: 'manual>*:2', repoDir, detached: true, command: [oldNode!, LANES_BIN] });
    const workerId = await worker.workerId();
    const started = await worker.waitForLog('worker started');
    t.not(started['pid'], worker.pid, 'the worker is a second process, on the pinned Node');
    await worker.waitForLog('joined worker:queue');
    const ids = await Promise.all([1, 2].map(() => submitRun(server, { queue: 'manual', plan: fixturePlan(HOLD_FOR), input: { holdMs: 5_000 } })));
    await waitFor(async () => (await Promise.all(ids.map((id) => getRun(server, id)))).every((run) => run.state === 'started' && run.worker === workerId), {
      timeoutMs: 20_000,
      message: 'both runs started',
    });
    if (target === 'group') process.kill(-worker.pid, 'SIGINT');
    else process.kill(worker.pid, 'SIGTERM');
    t.deepEqual(await worker.exited, { code: 0, signal: null }, `${target}: the wrapper exits with the worker's 0`);
    t.false(worker.lines.some((line) => line.msg === 'second signal: stopping now'), `${target}: the worker got one signal, not two`);
    for (const id of ids) t.is((await getRun(server, id)).state, 'success', `${target}: run ${id} drained`);
  }
});
