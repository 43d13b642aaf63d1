/**
 * A run's loggers (src/runtime/run-loggers.ts): the warm spare makes a set
 * ahead for the usual plan options (job logs at debug, nothing sanitized);
 * a run with other options gets a set made for its own, and every line
 * carries the step it was written in.
 */
import test from 'ava';
import { job, logsOf, plan, request, startEngine } from './helpers.ts';

const BODY = "fn(s => { console.debug('at debug'); console.log('at info', { secret: 'abc' }); return s; })";

test('the usual options: job lines at debug and above, nothing sanitized, each with its step', async (t) => {
  const engine = await startEngine(t, { poolSize: 1 });
  // Twice: the first run may take a thread booted for it, the second takes the warm spare's loggers.
  for (let i = 0; i < 2; i++) {
    const recorded = request(plan([job('a', BODY)]));
    t.is((await engine.execute(recorded.request)).reason, 'success');
    t.deepEqual(logsOf(recorded.events), [['at debug'], ['at info', { secret: 'abc' }]]);
    const step = recorded.events.find((e) => e.type === 'step-start');
    const lines = recorded.events.filter((e) => e.type === 'log' && e.source === 'JOB');
    t.true(step?.type === 'step-start' && lines.every((e) => e.type === 'log' && e.stepId === step.stepId), 'each line names its step');
  }
});

test("a run's own job_log_level and sanitize are honoured, after a run with the usual ones on the same child", async (t) => {
  const engine = await startEngine(t, { poolSize: 1 });
  t.is((await engine.execute(request(plan([job('a', BODY)])).request)).reason, 'success');
  const recorded = request(plan([job('a', BODY)], undefined, { job_log_level: 'info', sanitize: 'obfuscate' }));
  t.is((await engine.execute(recorded.request)).reason, 'success');
  t.deepEqual(logsOf(recorded.events), [['at info', '[object]']]);
});
