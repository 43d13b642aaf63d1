/**
 * The child process on its own (child-main.ts, forked as the pool forks it,
 * spoken to over IPC): its state is idle or running one run, and a move its
 * table refuses crashes it rather than leaving a run's thread orphaned.
 */
import { fork } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import type { ExecutionContext } from 'ava';
import test from 'ava';
import type { ChildConfig, ChildToParent, ParentToChild } from '../../src/engine/ipc-messages.ts';
import { CHILD_SOURCE_URL } from '../../src/engine/thread-bundle.ts';
import { waitFor } from '../server/helpers.ts';
import { buildExecutionRequest } from '../../src/engine/build-execution-request.ts';
import { CompiledJobs } from '../../src/engine/compiled-jobs.ts';
import { hangingExecution, job, plan, request } from './helpers.ts';

interface Forked {
  child: ChildProcess;
  messages: ChildToParent[];
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: string | null }>;
}

function forkChild(t: ExecutionContext, options: { warmSpares?: boolean } = {}): Forked {
  const config: ChildConfig = { spareMemoryLimitMb: 128, warmSpares: options.warmSpares ?? false, preload: [], nice: 0 };
  const child = fork(CHILD_SOURCE_URL, [JSON.stringify(config)], {
    execPath: process.execPath,
    execArgv: ['--experimental-vm-modules', '--disable-warning=ExperimentalWarning'],
    env: {},
    serialization: 'advanced',
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  const messages: ChildToParent[] = [];
  let stderr = '';
  child.on('message', (message: ChildToParent) => messages.push(message));
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  child.stdout?.resume();
  const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  });
  return { child, messages, stderr: () => stderr, exited };
}

/** A `run` message whose one job never ends. */
function hangingRun(): Extract<ParentToChild, { type: 'run' }> {
  const { runId, execution } = hangingExecution();
  return { type: 'run', runId, request: execution, memoryLimitMb: 128, urgent: false };
}


const stepStarted = (messages: ChildToParent[], runId: string) => () =>
  messages.some((m) => m.type === 'event' && m.runId === runId && m.event.type === 'step-start');

test('a stopped run leaves the child idle: it confirms the stop and runs the next one', async (t) => {
  const { child, messages } = forkChild(t);
  await waitFor(() => messages.some((m) => m.type === 'ready'), { timeoutMs: 15_000, message: 'ready' });
  const first = hangingRun();
  child.send(first);
  await waitFor(stepStarted(messages, first.runId), { timeoutMs: 15_000, message: 'the first run to start' });
  child.send({ type: 'stop-run', runId: first.runId } satisfies ParentToChild);
  await waitFor(() => messages.some((m) => m.type === 'run-stopped' && m.runId === first.runId), { timeoutMs: 15_000, message: 'run-stopped' });
  const second = hangingRun();
  child.send(second);
  await waitFor(stepStarted(messages, second.runId), { timeoutMs: 15_000, message: 'the second run to start' });
  t.false(messages.some((m) => m.type === 'run-ended'), 'no run ended on its own');
});

test('a second run while one is running is a move the child refuses: it crashes, naming the move', async (t) => {
  const { child, messages, stderr, exited } = forkChild(t);
  await waitFor(() => messages.some((m) => m.type === 'ready'), { timeoutMs: 15_000, message: 'ready' });
  const first = hangingRun();
  child.send(first);
  await waitFor(stepStarted(messages, first.runId), { timeoutMs: 15_000, message: 'the first run to start' });
  child.send(hangingRun());
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<'still alive'>((resolve) => (timer = setTimeout(() => resolve('still alive'), 15_000)));
  const exit = await Promise.race([exited, deadline]);
  clearTimeout(timer);
  t.deepEqual(exit, { code: 1, signal: null }, stderr());
  // Without a warm spare (this child boots none) the second run would wait for a thread of its own.
  t.regex(stderr(), /InvalidTransitionError: child: invalid transition running → waiting/);
});

test('a warm spare takes its run at once, having ignored the message its thread was sent when it booted', async (t) => {
  const { child, messages, stderr } = forkChild(t, { warmSpares: true });
  await waitFor(() => messages.some((m) => m.type === 'boot-ended' && m.spare), { timeoutMs: 15_000, message: 'the spare to boot' });
  // The spare's thread got its `warm` message when it said ready; the run's message comes after it.
  const req = request(plan([job('a', '(s) => ({ ...s, data: { seen: s.data } })', { adaptor: undefined })]), { input: { data: { n: 7 } } }).request;
  const run: ParentToChild = { type: 'run', runId: req.runId, request: buildExecutionRequest(req, new Map(), new CompiledJobs()).execution, memoryLimitMb: 128, urgent: false };
  child.send(run);
  await waitFor(() => messages.some((m) => m.type === 'run-ended' && m.runId === req.runId), { timeoutMs: 15_000, message: 'the run to end' });
  const forRun = messages.filter((m) => 'runId' in m && m.runId === req.runId);
  t.is(forRun[0]?.type, 'run-started', 'the thread said started first');
  const end = forRun.find((m) => m.type === 'run-ended');
  t.like(end, { end: { reason: 'success', finalState: { data: { seen: { n: 7 } } } } }, stderr());
  // The run took the spare: no thread was booted for it (the next spare boots only after its end).
  const ended = messages.indexOf(end as ChildToParent);
  t.is(messages.slice(0, ended).filter((m) => m.type === 'boot-ended').length, 1);
});
