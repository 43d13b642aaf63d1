/**
 * Every end of a run, with real child processes and threads: the reason and
 * error type reported, and that the engine keeps running runs afterwards.
 */
import test from 'ava';
import type { Engine } from '../../src/engine/index.ts';
import { job, logsOf, plan, request, startEngine, stepCompletes } from './helpers.ts';
import type { ExecutionContext } from 'ava';

async function stillWorks(t: ExecutionContext, engine: Engine): Promise<void> {
  const { request: req } = request(plan([job('ok', 'fn(s => ({ ...s, data: { ok: true } }))')]));
  const outcome = await engine.execute(req);
  t.is(outcome.reason, 'success', 'the engine runs the next run normally');
}

test('success: state flows through a chain of steps, events in order', async (t) => {
  const engine = await startEngine(t);
  const { request: req, events } = request(
    plan([job('a', 'fn(s => ({ ...s, data: { n: 1 } }))'), job('b', 'fn(s => { console.log("n is", s.data.n); return { ...s, data: { n: s.data.n + 1 } } })')]),
  );
  const outcome = await engine.execute(req);
  t.is(outcome.reason, 'success');
  t.deepEqual(outcome.finalState, { data: { n: 2 } });
  t.deepEqual(logsOf(events), [['n is', 1]]);
  const types = events.filter((e) => e.type !== 'log').map((e) => e.type);
  t.deepEqual(types, ['run-start', 'step-start', 'step-complete', 'step-start', 'step-complete', 'run-complete']);
  const steps = stepCompletes(events);
  t.is(outcome.finalStepId, steps[1]?.stepId);
  t.truthy(steps[0]?.threadId);
  t.true((steps[0]?.mem.system ?? 0) > 0);
  const start = events[0];
  t.true(start?.type === 'run-start' && start.versions['@openfn/language-lanesfixture'] === '1.0.0');
});

test('a throw in job code fails the step and the run', async (t) => {
  const engine = await startEngine(t);
  const { request: req, events } = request(plan([job('a', 'fn(() => { throw new Error("nope") })')]));
  const outcome = await engine.execute(req);
  t.is(outcome.reason, 'fail');
  t.truthy(outcome.errorType);
  t.regex(outcome.errorMessage ?? '', /nope/);
  t.is(stepCompletes(events)[0]?.reason, 'fail');
});

test('an error written to state fails the run with its type', async (t) => {
  const engine = await startEngine(t);
  const { request: req } = request(plan([job('a', 'fn(s => ({ ...s, errors: { a: { type: "MyError", message: "bad data" } } }))')]));
  const outcome = await engine.execute(req);
  t.is(outcome.reason, 'fail');
  t.is(outcome.errorType, 'MyError');
  t.is(outcome.errorMessage, 'bad data');
});

test('a syntax error crashes with CompileError and the line', async (t) => {
  const engine = await startEngine(t);
  const { request: req, events } = request(plan([job('a', 'fn(s => s)\nfn(s => {\n  return s +\n})')]));
  const outcome = await engine.execute(req);
  t.is(outcome.reason, 'crash');
  t.is(outcome.errorType, 'CompileError');
  t.regex(outcome.errorMessage ?? '', /line 4/);
  t.is(stepCompletes(events).length, 0);
});

test('while(true) is killed with TimeoutError and the engine goes on', async (t) => {
  const engine = await startEngine(t);
  const { request: req, events } = request(plan([job('a', 'fn(() => { while (true) {} })')]), { limits: { timeoutMs: 1500 } });
  const outcome = await engine.execute(req);
  t.is(outcome.reason, 'kill');
  t.is(outcome.errorType, 'TimeoutError');
  const started = events.filter((e) => e.type === 'step-start').length;
  t.is(stepCompletes(events).length, started, 'an open step is closed with the run reason');
  for (const step of stepCompletes(events)) t.is(step.reason, 'kill');
  await stillWorks(t, engine);
});

test('a heap allocation loop is killed with OOMError', async (t) => {
  const engine = await startEngine(t, { runMemoryLimitMb: 64 });
  const body = 'fn(() => { const keep = []; while (true) keep.push(new Array(100000).fill({ x: Math.random() })); })';
  const { request: req } = request(plan([job('a', body)]), { limits: { memoryLimitMb: 64 } });
  const outcome = await engine.execute(req);
  t.is(outcome.reason, 'kill');
  t.is(outcome.errorType, 'OOMError');
  await stillWorks(t, engine);
});

test('Buffers beyond the RSS ceiling kill the child with OOMError', async (t) => {
  const engine = await startEngine(t, { runMemoryLimitMb: 64, rssHeadroomMb: 192, rssSampleIntervalMs: 100 });
  const pidBefore = engine.childPids()[0];
  const body = 'fn(async () => { const keep = []; while (true) { keep.push(Buffer.alloc(4 * 1024 * 1024, 1)); await new Promise(r => setTimeout(r, 10)); } })';
  const { request: req } = request(plan([job('a', body)]), { limits: { memoryLimitMb: 64, timeoutMs: 30_000 } });
  const outcome = await engine.execute(req);
  t.is(outcome.reason, 'kill');
  t.is(outcome.errorType, 'OOMError');
  t.regex(outcome.errorMessage ?? '', /RSS/);
  await stillWorks(t, engine);
  t.notDeepEqual(engine.childPids(), [pidBefore], 'the killed child was replaced');
});

test('process.exit(3) from adaptor code crashes with ExitError', async (t) => {
  const engine = await startEngine(t);
  const { request: req } = request(plan([job('a', 'exitProcess(3)')]));
  const outcome = await engine.execute(req);
  t.is(outcome.reason, 'crash');
  t.is(outcome.errorType, 'ExitError');
  t.regex(outcome.errorMessage ?? '', /process\.exit\(3\)/);
  await stillWorks(t, engine);
});

test('process.exit(3) in job code crashes (job code has no process)', async (t) => {
  const engine = await startEngine(t);
  const { request: req } = request(plan([job('a', 'fn(() => process.exit(3))')]));
  const outcome = await engine.execute(req);
  t.is(outcome.reason, 'crash');
  t.regex(outcome.errorMessage ?? '', /process is not defined/);
});

test('an uncaught error in a callback crashes the run', async (t) => {
  const engine = await startEngine(t);
  const { request: req } = request(plan([job('a', 'throwLater("late boom")')]));
  const outcome = await engine.execute(req);
  t.is(outcome.reason, 'crash');
  t.is(outcome.errorType, 'RuntimeCrash');
  t.regex(outcome.errorMessage ?? '', /late boom/);
  await stillWorks(t, engine);
});

test('an adaptor outside the allow-list is an exception, without npm', async (t) => {
  const engine = await startEngine(t);
  const { request: req, events } = request(plan([job('a', 'fn(s => s)', { adaptor: 'left-pad@1.3.0' })]));
  const outcome = await engine.execute(req);
  t.is(outcome.reason, 'exception');
  t.is(outcome.errorType, 'AdaptorError');
  t.regex(outcome.errorMessage ?? '', /allow-list/);
  t.is(events[0]?.type, 'run-start');
});

test('an adaptor that cannot be installed is an exception', async (t) => {
  const engine = await startEngine(t, { localAdaptors: { '@openfn/language-lanesmissing': '/nonexistent/lanes-missing-adaptor' } });
  const { request: req } = request(plan([job('a', 'fn(s => s)', { adaptor: '@openfn/language-lanesmissing@1.0.0' })]));
  const outcome = await engine.execute(req);
  t.is(outcome.reason, 'exception');
  t.is(outcome.errorType, 'AdaptorError');
});

test('credentials are fetched through the parent and removed from output', async (t) => {
  const engine = await startEngine(t);
  const asked: string[] = [];
  const { request: req, events } = request(plan([job('a', 'fn(s => ({ ...s, data: { user: s.configuration.user } }))', { credential_id: 'cred-1' })]), {
    fetchCredential: async (id) => {
      asked.push(id);
      return { user: 'ada', password: 'secret' };
    },
  });
  const outcome = await engine.execute(req);
  t.is(outcome.reason, 'success');
  t.deepEqual(asked, ['cred-1']);
  t.deepEqual(outcome.finalState, { data: { user: 'ada' } });
  t.false(JSON.stringify(events).includes('secret'), 'the credential body appears in no event');
});

test('a credential that cannot be fetched is an exception', async (t) => {
  const engine = await startEngine(t);
  const { request: req, events } = request(plan([job('a', 'fn(s => s)', { credential_id: 'cred-x' })]));
  const outcome = await engine.execute(req);
  t.is(outcome.reason, 'exception');
  t.is(outcome.errorType, 'CredentialError');
  t.is(stepCompletes(events)[0]?.reason, 'exception', 'the open step is closed');
});

test('abort with a cancel reason ends the run as cancel', async (t) => {
  const engine = await startEngine(t);
  const controller = new AbortController();
  const { request: req } = request(plan([job('a', 'fn(() => new Promise(() => {}))')]), {
    signal: controller.signal,
    onEvent: (e) => {
      if (e.type === 'step-start') controller.abort({ reason: 'cancel', errorType: 'CancelError', message: 'cancelled by the server' });
    },
  });
  const outcome = await engine.execute(req);
  t.is(outcome.reason, 'cancel');
  t.is(outcome.errorType, 'CancelError');
  await stillWorks(t, engine);
});

test('stop() ends active runs with ShutdownError and is idempotent', async (t) => {
  const engine = await startEngine(t);
  const { request: req } = request(plan([job('a', 'fn(() => new Promise(() => {}))')]), {
    onEvent: (e) => {
      if (e.type === 'step-start') void engine.stop();
    },
  });
  const outcome = await engine.execute(req);
  t.is(outcome.reason, 'kill');
  t.is(outcome.errorType, 'ShutdownError');
  await engine.stop();
  t.is(engine.state, 'stopped');
  t.deepEqual(engine.childPids(), []);
  const after = await engine.execute(request(plan([job('a', 'fn(s => s)')])).request);
  t.is(after.errorType, 'ShutdownError');
});
