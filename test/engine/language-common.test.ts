/**
 * The real @openfn/language-common from the registry, through edges and a
 * condition. Skipped, with a visible message, when the registry cannot be
 * reached (the adaptor cannot be installed).
 */
import test from 'ava';
import { registryServes } from '../registry.ts';
import { Engine } from '../../src/engine/index.ts';
import { logsOf, request, silentLogger, tempDir } from './helpers.ts';

const ADAPTOR = '@openfn/language-common@3.3.4';

const reachable = registryServes('@openfn/language-common', '3.3.4');

if (!reachable) {
  test('language-common: registry unreachable', (t) => {
    t.log(`SKIPPED: the npm registry is unreachable, ${ADAPTOR} cannot be installed`);
    t.pass();
  });
}

(reachable ? test : test.skip)('language-common: real job code runs through edges and a condition', async (t) => {
  t.timeout(120_000);
  const engine = await Engine.create({ poolSize: 1, repoDir: await tempDir(t), logger: silentLogger, preloadAdaptors: [ADAPTOR] });
  t.teardown(() => engine.stop());
  const plan = {
    id: 'p',
    dataclip_id: 'd',
    starting_node_id: 't',
    triggers: [{ id: 't' }],
    jobs: [
      { id: 'a', adaptor: ADAPTOR, body: "fn(state => ({ ...state, data: { items: [1, 2, 3] } }));\neach($.data.items, fn(state => { console.log('item', state.data); return state; }));\nfn(state => ({ ...state, data: { items: [1, 2, 3] } }));" },
      { id: 'b', adaptor: ADAPTOR, body: "fn(state => { console.log('sum'); return { ...state, sum: state.data.items.reduce((a, b) => a + b, 0) }; })" },
      { id: 'c', adaptor: ADAPTOR, body: 'fn(state => ({ ...state, wrong: true }))' },
    ],
    edges: [
      { id: 'e0', source_trigger_id: 't', target_job_id: 'a', condition: 'always' },
      { id: 'e1', source_job_id: 'a', target_job_id: 'b', condition: 'state.data.items.length === 3' },
      { id: 'e2', source_job_id: 'a', target_job_id: 'c', condition: 'on_job_failure' },
    ],
  };
  // The run's timeout includes installing the adaptor from the registry, slow on a busy machine.
  const { request: req, events } = request(plan, { limits: { timeoutMs: 100_000 } });
  const outcome = await engine.execute(req);
  t.is(outcome.reason, 'success', outcome.errorMessage ?? '');
  t.like(outcome.finalState, { sum: 6 });
  t.deepEqual(logsOf(events), [['item', 1], ['item', 2], ['item', 3], ['sum']]);
  const start = events[0];
  t.true(start?.type === 'run-start' && start.versions['@openfn/language-common'] === '3.3.4');
});
