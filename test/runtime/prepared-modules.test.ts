/**
 * prepared-modules.ts: the module of the job a run is expected to start with
 * is compiled ahead into each prepared context, handed to the runtime's
 * construction of exactly that text in that context, once, and never
 * otherwise. The `vm` module API needs `--experimental-vm-modules`, so the
 * checks run in a child Node with that flag (the probe prints what it saw);
 * through the engine, a job's second run on a child (the one compiled ahead)
 * behaves as its first.
 */
import test from 'ava';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { job, logsOf, plan, request, startEngine } from '../engine/helpers.ts';

const PROBE = fileURLToPath(new URL('../fixtures/prepared-modules-probe.ts', import.meta.url));

test('a module compiled ahead goes to the runtime-shaped construction of its text in its context, once', async (t) => {
  const { stdout } = await promisify(execFile)(process.execPath, ['--experimental-vm-modules', '--disable-warning=ExperimentalWarning', PROBE]);
  const seen = JSON.parse(stdout) as Record<string, unknown>;
  t.is(seen['count'], 2, 'one per prepared context');
  t.true(seen['firstIsPrepared'], 'the text in its context takes the module compiled ahead');
  t.is(seen['firstIdentifier'], 'vm:module(0)', "named as the runtime's own module would be");
  t.true(seen['firstIsModule']);
  t.deepEqual(seen['firstDefault'], [1], 'it links and evaluates as compiled at the run');
  t.true(seen['againIsAnother'], 'handed out once');
  t.is(seen['againIdentifier'], 'vm:module(0)', 'the context\'s first default name was left free');
  t.true(seen['otherIsAnother'], 'another text is compiled at the run');
  t.true(seen['withOptionsIsAnother'], 'a call with other options is compiled at the run');
  t.true(seen['forBIsPrepared'], 'each context has its own');
  t.is(seen['freshIdentifier'], 'vm:module(0)');
  t.is(seen['badText'], 0, 'text that does not compile is left for the run');
});

test("a job's next run on the same child, compiled ahead, runs and fails as its first did", async (t) => {
  const engine = await startEngine(t, { poolSize: 1 });
  const failing = "fn(s => { console.log('ran'); throw new Error('boom'); })";
  const outcomes = [];
  for (let i = 0; i < 3; i++) {
    const recorded = request(plan([job('a', failing)]));
    const outcome = await engine.execute(recorded.request);
    outcomes.push({ reason: outcome.reason, errorType: outcome.errorType, errorMessage: outcome.errorMessage, logs: logsOf(recorded.events) });
  }
  // The runtime tells a job's own error from an adaptor's by the job module's name in the stack.
  t.is(outcomes[0]?.reason, 'fail', JSON.stringify(outcomes[0]));
  t.deepEqual(outcomes[1], outcomes[0]);
  t.deepEqual(outcomes[2], outcomes[0]);
});
