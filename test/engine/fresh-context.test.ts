/**
 * A run's job code runs in a context of its own, made for that run (ahead of
 * it, in the warm spare: src/runtime/prepared-contexts.ts): code generation
 * from strings is off in it, and nothing a run leaves on its globals reaches
 * the next run on the same child.
 */
import test from 'ava';
import { job, plan, request, startEngine } from './helpers.ts';

test('job code cannot generate code from strings: the context refuses it, whatever the compiler saw', async (t) => {
  const engine = await startEngine(t);
  // Written so the compiler's own check for `eval` does not see them: only the context's settings stop them.
  const bodies = [
    "fn(s => ({ ...s, data: { v: globalThis['ev' + 'al']('1 + 1') } }))",
    "fn(s => ({ ...s, data: { v: new Function('return 2')() } }))",
    "fn(s => ({ ...s, data: { v: (() => {}).constructor('return 3')() } }))",
  ];
  for (const body of bodies) {
    const outcome = await engine.execute(request(plan([job('a', body)])).request);
    // The runtime reports the context's refusal (an EvalError) as a security kill.
    t.is(outcome.reason, 'kill', `${body}: ${outcome.errorType} ${outcome.errorMessage}`);
    t.is(outcome.errorType, 'SecurityError', body);
  }
});

test('a global set by one run is not there for the next run on the same child', async (t) => {
  const engine = await startEngine(t, { poolSize: 1 });
  const first = await engine.execute(request(plan([job('a', "fn(s => { globalThis.leftBehind = 'x'; return { ...s, data: { seen: typeof leftBehind } }; })")])).request);
  t.deepEqual(first.finalState, { data: { seen: 'string' } });
  const second = await engine.execute(request(plan([job('b', 'fn(s => ({ ...s, data: { seen: typeof leftBehind, state: typeof state } }))')])).request);
  t.deepEqual(second.finalState, { data: { seen: 'undefined', state: 'object' } });
});
