/**
 * The workflows in examples/ (what `npm start` submits) run to success on the
 * real engine with the real @openfn/language-common from the registry.
 * Skipped, with a visible message, when the registry cannot be reached.
 */
import test from 'ava';
import { registryServes } from '../registry.ts';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readWorkflow } from '../../src/cli/read-workflow.ts';
import { api, startServer, waitFor } from '../server/helpers.ts';
import { tempDir } from '../engine/helpers.ts';
import { startWorker, testConfig } from '../worker/helpers.ts';

const EXAMPLES = fileURLToPath(new URL('../../examples/', import.meta.url));
const ADAPTOR = '@openfn/language-common@3.3.4';

const reachable = registryServes('@openfn/language-common', '3.3.4');

interface RunView {
  state: string;
  queue: string;
  error_message: string | null;
  steps: Array<{ job_id: string; reason: string }>;
  final_state: { data: Record<string, unknown> };
}

if (!reachable) {
  test('examples: registry unreachable', (t) => {
    t.log(`SKIPPED: the npm registry is unreachable, ${ADAPTOR} cannot be installed`);
    t.pass();
  });
}

(reachable ? test : test.skip)('the examples run to success with the real adaptor, taking the right branch', async (t) => {
  t.timeout(120_000);
  const server = await startServer(t);
  const repoDir = await tempDir(t, 'lanes-examples-repo-');
  await startWorker(t, {
    config: testConfig({ lightningUrl: server.workerUrl, workloopsText: 'fast_lane:1 manual>*:2', repoDir, preloadAdaptors: [ADAPTOR] }),
  });

  const ids = new Map<string, string>();
  for (const name of ['hello.json', 'multi-step.json', 'slow.json']) {
    const body = await readWorkflow(join(EXAMPLES, name));
    const { status, body: created } = await api<{ id: string }>(server, 'POST', '/api/runs', body);
    t.is(status, 201);
    ids.set(name, created.id);
  }
  const finished = async (name: string) =>
    waitFor(
      async () => {
        const { body } = await api<RunView>(server, 'GET', `/api/runs/${ids.get(name)}`);
        return ['success', 'failed', 'crashed', 'killed', 'cancelled', 'exception', 'lost'].includes(body.state) ? body : null;
      },
      { timeoutMs: 90_000, message: `${name} to finish` },
    );

  const hello = await finished('hello.json');
  t.is(hello.state, 'success', hello.error_message ?? '');
  t.is(hello.queue, 'fast_lane');
  t.is(hello.final_state.data['greeting'], 'hello Lanes');

  const multi = await finished('multi-step.json');
  t.is(multi.state, 'success', multi.error_message ?? '');
  t.deepEqual(multi.steps.map((step) => step.job_id), ['sum-orders', 'flag-large']);
  t.like(multi.final_state.data, { total: 225, flagged: true });

  const slow = await finished('slow.json');
  t.is(slow.state, 'success', slow.error_message ?? '');
  t.is(slow.final_state.data['done'], true);
});
