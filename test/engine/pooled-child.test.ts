/**
 * One pooled child on its own (`PooledChild`, a real forked child-main.ts):
 * its state union, what each state carries (a busy child's run, a draining
 * child's stop) and the moves its table refuses.
 */
import type { ExecutionContext } from 'ava';
import test from 'ava';
import { PooledChild } from '../../src/engine/pooled-child.ts';
import type { PooledChildState, RunSink } from '../../src/engine/pooled-child.ts';
import type { RunEnd } from '../../src/runtime/run-ends.ts';
import { InvalidTransitionError } from '../../src/state-machine.ts';
import { captureLogger } from '../capture-logger.ts';
import { waitFor } from '../server/helpers.ts';
import { hangingExecution, silentLogger } from './helpers.ts';

/** A started child; `states` are the changes it told its pool of. Killed at teardown. */
async function startChild(t: ExecutionContext, logger = silentLogger) {
  const states: PooledChildState[] = [];
  const child = new PooledChild({
    id: 1,
    config: { spareMemoryLimitMb: 128, warmSpares: true, preload: [], nice: 0 },
    entry: undefined,
    heapMb: 192,
    env: {},
    execArgv: [],
    killGraceMs: 10_000,
    logger,
    onState: (_child, state) => states.push(state),
  });
  t.teardown(() => child.kill());
  await child.start();
  return { child, states };
}

/** A run whose one job never ends, and a sink recording what the child tells of it. */
function hangingRun() {
  const { runId, execution } = hangingExecution();
  const ends: RunEnd[] = [];
  let markStepStarted: () => void = () => undefined;
  const stepStarted = new Promise<void>((resolve) => (markStepStarted = resolve));
  const sink: RunSink = {
    onStarted: () => undefined,
    onEvent: (event) => {
      if (event.type === 'step-start') markStepStarted();
    },
    onCompiled: () => undefined,
    onCredentialRequest: () => undefined,
    onEnd: (end) => ends.push(end),
  };
  return { runId, execution, sink, ends, stepStarted };
}


/** Reserves `child`, gives it a hanging run and waits for its step to start. */
async function startHangingRun(child: PooledChild, memoryLimitMb = 128) {
  const run = hangingRun();
  child.reserve();
  child.run(run.runId, run.execution, memoryLimitMb, run.sink);
  await run.stepStarted;
  return run;
}

test('a move outside the table throws InvalidTransitionError and leaves the state; each change is logged', async (t) => {
  const { logger, lines } = captureLogger();
  const { child, states } = await startChild(t, logger);
  const run = hangingRun();
  t.is(child.state, 'idle');
  const error = t.throws(() => child.run(run.runId, run.execution, 128, run.sink), { instanceOf: InvalidTransitionError });
  t.is(error?.message, 'pooled child 1: invalid transition idle → busy');
  t.is(child.state, 'idle');
  t.is(child.runId, undefined, 'a refused run leaves nothing behind');
  child.reserve();
  t.throws(() => child.reserve(), { message: 'pooled child 1: invalid transition reserved → reserved' });
  child.release();
  t.deepEqual(states, ['idle', 'reserved', 'idle']);
  const changes = lines.filter((line) => line['msg'] === 'state changed').map((line) => [line['childId'], line['from'], line['to']]);
  t.deepEqual(changes, [
    [1, 'starting', 'idle'],
    [1, 'idle', 'reserved'],
    [1, 'reserved', 'idle'],
  ]);
});

test('a busy child carries its run; killed from outside it is dead and its run ends crash, once', async (t) => {
  const { child, states } = await startChild(t);
  const run = await startHangingRun(child, 100);
  t.is(child.state, 'busy');
  t.is(child.runId, run.runId);
  t.is(child.runMemoryLimitMb, 100);
  const pid = child.pid;
  if (pid === undefined) return t.fail('no pid');
  process.kill(pid, 'SIGKILL');
  await child.kill();
  t.is(child.state, 'dead');
  t.is(child.runId, undefined, 'the run went with the busy state');
  t.is(child.runMemoryLimitMb, undefined);
  t.is(run.ends.length, 1);
  t.like(run.ends[0], { reason: 'crash', errorType: 'ProcessCrashError', errorMessage: "The run's process was killed by SIGKILL" });
  t.deepEqual(states, ['idle', 'reserved', 'busy', 'dead']);
  t.throws(() => child.reserve(), { instanceOf: InvalidTransitionError, message: 'pooled child 1: invalid transition dead → reserved' });
});

test('a run stopped by the parent drains, then the child is idle and takes the next run', async (t) => {
  const { child, states } = await startChild(t);
  const first = await startHangingRun(child);
  let drained = 0;
  child.stopRun(() => (drained += 1));
  t.is(child.state, 'draining');
  t.is(child.runId, first.runId, 'a draining child still holds the run it stops');
  await waitFor(() => child.state === 'idle', { timeoutMs: 15_000, message: 'the child to confirm the stop' });
  t.is(child.runId, undefined);
  t.is(child.runsFinished, 1);
  t.is(drained, 1, 'told once that the child passed on what the thread held');
  t.deepEqual(first.ends, [], 'the stopped run ended nowhere of its own: its end is the parent\'s');

  const second = await startHangingRun(child);
  t.is(child.runId, second.runId);
  child.abandonRun();
  await child.kill();
  t.is(child.state, 'dead');
  t.deepEqual(second.ends, [], 'an abandoned run ends unheard even though its process dies');
  t.deepEqual(states, ['idle', 'reserved', 'busy', 'draining', 'idle', 'reserved', 'busy', 'dead']);
});
