/**
 * The warm pool against a real `lanes worker` process (docs/memory.md, "The
 * warm pool"): idle engine children are retired after
 * `--idle-child-timeout-seconds` down to one per slot of the lanes that pin
 * their queues, the retired processes are really gone from /proc, the spare
 * comes back once runs come, runs on every lane still succeed after the
 * quiet spell, and the worker's memory accounting stops counting the
 * retired children.
 */
import test from 'ava';
import { readFileSync } from 'node:fs';
import { startServer, submitRun, waitFor } from '../server/helpers.ts';
import { TERMINAL_STATES, descendants, fixturePlan, isAlive, prepareAdaptorRepo, spawnWorker, waitAllTerminal, waitForRuns } from './process-cluster.ts';

const MB = 1024 * 1024;

async function metric(port: number, name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const match = new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text);
  if (!match) throw new Error(`no ${name} in /metrics`);
  return Number(match[1]);
}

/**
 * The worker's engine children (forked from the child bundle): its other, short-lived
 * descendants, such as the helper that writes a bundle's code cache, are not the pool.
 */
function engineChildren(pid: number): number[] {
  return descendants(pid).filter((child) => {
    try {
      return readFileSync(`/proc/${child}/cmdline`, 'utf8').includes('child-main');
    } catch {
      return false;
    }
  });
}

test('idle children are retired down to the pinned lanes\' slots, runs on every lane succeed after, and the accounting drops the retired', async (t) => {
  const server = await startServer(t);
  const repoDir = await prepareAdaptorRepo(t);
  // Two lanes pin their queues (two slots), one takes any queue; the pool is 4 slots + 1 spare = 5 children.
  const worker = spawnWorker(t, {
    lightningUrl: server.workerUrl,
    workloops: 'fast_lane:1 urgent:1 manual>*:2',
    repoDir,
    extraArgs: ['--idle-child-timeout-seconds', '1', '--run-memory', '128', '--max-memory', '2048'],
  });
  const started = await worker.waitForLog('worker started');
  const port = Number(started['healthPort']);
  await worker.waitForLog('joined worker:queue');
  const forked = engineChildren(worker.pid);
  t.is(forked.length, 5, `one child per slot plus the spare at start: ${forked.map((pid) => readFileSync(`/proc/${pid}/cmdline`, 'utf8').slice(0, 120)).join(' | ')}`);

  // Retired down to the two pinned slots: the other processes are gone, not merely idle.
  await waitFor(() => engineChildren(worker.pid).length === 2, { timeoutMs: 30_000, intervalMs: 100, message: 'the pool to shrink to the pinned slots' });
  const kept = engineChildren(worker.pid);
  t.true(kept.every((pid) => forked.includes(pid)), 'the children kept warm are children forked at start');
  // A child being killed leaves the list above (its command line reads empty once its memory is gone) a moment
  // before it stops being a process: wait for that moment rather than catch it half-way.
  const retired = forked.filter((p) => !kept.includes(p));
  await waitFor(() => retired.every((pid) => !isAlive(pid)), { timeoutMs: 10_000, intervalMs: 50, message: `the retired children ${retired.join(', ')} to be gone` });
  // It stays at the minimum: the warm children of the pinned lanes are never retired.
  await new Promise((resolve) => setTimeout(resolve, 2500));
  t.deepEqual(engineChildren(worker.pid).sort(), [...kept].sort());

  // The accounting counts the live children only: the worker and two children, no run reserved.
  t.is(await metric(port, 'lanes_worker_engine_children'), 2);
  t.is(await metric(port, 'lanes_worker_memory_accounted_bytes'), (160 + 2 * 160) * MB);

  // Runs come again: the spare is forked back (pinned slots + 1 spare), so a lane that refills at once finds a booted
  // thread; it retires again after the timeout. With a 1 s idle timeout a loaded machine can fork and retire the spare
  // between two looks at /proc, so the fork is seen either alive in /proc or in its exit, logged with its pid as it
  // happens: a child the worker did not fork at start.
  const exitedLines = worker.lines.length;
  const first = await submitRun(server, { queue: 'fast_lane', plan: fixturePlan('fn(state => state)') });
  t.is((await waitAllTerminal(server, [first], 60_000))[0]?.state, 'success');
  const forkedBack = new Set<number>();
  await waitFor(
    () => {
      for (const pid of engineChildren(worker.pid)) if (!forked.includes(pid)) forkedBack.add(pid);
      for (const line of worker.lines.slice(exitedLines)) {
        if (line.msg === 'child process exited' && !forked.includes(Number(line['childPid']))) forkedBack.add(Number(line['childPid']));
      }
      return forkedBack.size > 0;
    },
    { timeoutMs: 30_000, intervalMs: 50, message: 'the spare to be forked back once runs come' },
  );
  await waitFor(() => engineChildren(worker.pid).length === 2, { timeoutMs: 30_000, intervalMs: 100, message: 'the spare to retire again' });

  // After the spell, a run on every lane (and on a queue only the wildcard lane takes), all four at once:
  // the pool forks back up for them, so they all run together. That they ran together is read from the server's
  // record of each attempt (every start before every end), not from a poll that must catch all four `started` in one
  // look, which a loaded machine can miss. Each holds 20 s from its own start: forking and booting two children took
  // more than 8 s beside a trace-logging worker and two servers on this 2-core machine.
  const HOLD = 'fn(state => new Promise(resolve => setTimeout(() => resolve(state), 20000)))';
  const ids = await Promise.all(['fast_lane', 'urgent', 'manual', 'default'].map((queue) => submitRun(server, { queue, plan: fixturePlan(HOLD) })));
  // A child for each run (and, up to the pool's size, one more kept idle for the pinned lanes): the most seen while they run.
  let mostChildren = 0;
  const views = await waitForRuns(
    server,
    ids,
    (view) => {
      mostChildren = Math.max(mostChildren, engineChildren(worker.pid).length);
      return TERMINAL_STATES.includes(view.state);
    },
    { timeoutMs: 90_000, message: 'the four runs to end' },
  );
  t.deepEqual(views.map((view) => view.state), ['success', 'success', 'success', 'success']);
  const attempts = views.map((view) => view.history.at(-1));
  const lastStart = Math.max(...attempts.map((attempt) => Date.parse(attempt?.started_at ?? '')));
  const firstEnd = Math.min(...attempts.map((attempt) => Date.parse(attempt?.finished_at ?? '')));
  t.true(lastStart < firstEnd, `all four ran together: the last started ${lastStart - firstEnd} ms after the first ended`);
  t.true(mostChildren >= 4, `the pool grew back (at most ${mostChildren} children seen)`);

  // And the pool shrinks again once they are done.
  await waitFor(() => engineChildren(worker.pid).length === 2, { timeoutMs: 30_000, intervalMs: 100, message: 'the pool to shrink again' });
  await waitFor(async () => (await metric(port, 'lanes_worker_engine_children')) === 2, { timeoutMs: 5_000, intervalMs: 100, message: 'the metric to follow' });
});
