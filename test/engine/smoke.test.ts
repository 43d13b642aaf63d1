import test from 'ava';
import { job, plan, request, startEngine, logsOf } from './helpers.ts';

test('a run with the fixture adaptor succeeds', async (t) => {
  const engine = await startEngine(t);
  const { request: req, events } = request(plan([job('a', 'fn(state => { console.log("hello", 1); return { ...state, data: { x: 1 } } })')]));
  const outcome = await engine.execute(req);
  t.log(JSON.stringify(events, null, 1).slice(0, 3000));
  t.is(outcome.reason, 'success');
  t.deepEqual(logsOf(events), [['hello', 1]]);
});
