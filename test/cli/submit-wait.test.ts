/**
 * `lanes submit --wait` through the real binary, against the real server and
 * a worker with the real engine: the command returns the finished run and
 * its exit code says how the run ended.
 */
import test from 'ava';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startServer, TEST_API_TOKEN } from '../server/helpers.ts';
import { tempDir } from '../engine/helpers.ts';
import { startWorker, testConfig } from '../worker/helpers.ts';
import { spawn } from 'node:child_process';
import { LANES_BIN, runLanes } from './helpers.ts';

const FIXTURE_DIR = fileURLToPath(new URL('../fixtures/adaptor/', import.meta.url));
const FIXTURE = '@openfn/language-lanesfixture@1.0.0';

function planFile(body: string): Record<string, unknown> {
  return {
    triggers: [{ id: 'trigger', type: 'webhook' }],
    jobs: [{ id: 'job', body, adaptor: FIXTURE }],
    edges: [{ id: 'edge', source_trigger_id: 'trigger', target_job_id: 'job', condition: 'always' }],
  };
}

test('submit --wait prints the finished run; exit 0 on success and 1 on failure', async (t) => {
  const server = await startServer(t);
  const repoDir = await tempDir(t, 'lanes-submit-repo-');
  await startWorker(t, {
    config: testConfig({ lightningUrl: server.workerUrl, workloopsText: 'fast_lane:1 manual>*:1', repoDir }),
    engine: { localAdaptors: { '@openfn/language-lanesfixture': FIXTURE_DIR }, repoDir },
  });
  const dir = await tempDir(t, 'lanes-submit-files-');
  const good = join(dir, 'good.json');
  const bad = join(dir, 'bad.json');
  await writeFile(good, JSON.stringify(planFile('fn(state => ({ ...state, data: { doubled: state.data.n * 2 } }))')));
  await writeFile(bad, JSON.stringify(planFile('fn(() => { throw new Error("nope") })')));

  const ok = await runLanes(['submit', good, '--queue', 'fast_lane', '--input', '{"data":{"n":21}}', '--wait', '--server', server.url, '--api-token', TEST_API_TOKEN]);
  t.is(ok.code, 0, ok.stderr);
  const run = JSON.parse(ok.stdout) as { state: string; queue: string; final_state: { data: { doubled: number } } };
  t.is(run.state, 'success');
  t.is(run.queue, 'fast_lane');
  t.is(run.final_state.data.doubled, 42);

  const failed = await runLanes(['submit', bad, '--wait', '--server', server.url], { LANES_API_TOKEN: TEST_API_TOKEN });
  t.is(failed.code, 1);
  t.is((JSON.parse(failed.stdout) as { state: string }).state, 'failed');

  const queued = await runLanes(['submit', good, '--queue', 'manual', '--server', server.url], { LANES_API_TOKEN: TEST_API_TOKEN });
  t.is(queued.code, 0, queued.stderr);
  t.like(JSON.parse(queued.stdout), { queue: 'manual' });
});

test('submit with a refused body is one line and exit 2', async (t) => {
  const server = await startServer(t);
  const result = await runLanes(['submit', 'examples/hello.json', '--queue', 'no-such-queue!', '--server', server.url], { LANES_API_TOKEN: TEST_API_TOKEN });
  t.is(result.code, 2);
  // The client checks the body with the server's schema: nothing is sent.
  t.regex(result.stderr.trim(), /^lanes submit: examples\/hello\.json is not a valid run: queue: must match /);
});

test('submit without the API token, or with a wrong one, is one line naming the token and exit 2', async (t) => {
  const server = await startServer(t);
  const missing = await runLanes(['submit', 'examples/hello.json', '--server', server.url]);
  t.is(missing.code, 2);
  t.regex(missing.stderr.trim(), /^lanes submit: submit run: HTTP 401: authorization: send the API token as "Authorization: Bearer <token>" \(pass --api-token/);
  const wrong = await runLanes(['submit', 'examples/hello.json', '--server', server.url, '--api-token', 'not-the-right-token-at-all']);
  t.is(wrong.code, 2);
  t.regex(wrong.stderr.trim(), /HTTP 401: authorization: the API token is wrong/);
  t.false(wrong.stderr.includes('not-the-right-token-at-all'));
  t.deepEqual(await server.store.listRuns({ limit: 10 }), []);
});

test('submit --wait that times out names the run it leaves on the server; exit 1', async (t) => {
  const server = await startServer(t);
  // No worker: the run stays queued.
  const result = await runLanes(['submit', 'examples/hello.json', '--wait', '--wait-timeout', '1', '--server', server.url, '--api-token', TEST_API_TOKEN]);
  t.is(result.code, 1);
  const id = /run (\S+) queued on/.exec(result.stderr)?.[1];
  t.truthy(id, result.stderr);
  t.regex(result.stderr, new RegExp(`gave up waiting for run ${id} \\(--wait-timeout\\); it is still on the server: ${server.url}/api/runs/${id}`));
  t.is((await server.store.getRun(id!))?.state, 'available');
});

test('submit --wait whose server goes away mid-wait names the run; exit 1, one line, no stack', async (t) => {
  const server = await startServer(t);
  const child = spawn(process.execPath, [LANES_BIN, 'submit', 'examples/hello.json', '--wait', '--server', server.url, '--api-token', TEST_API_TOKEN], {
    cwd: fileURLToPath(new URL('../../', import.meta.url)),
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  t.teardown(() => child.kill('SIGKILL'));
  let stderr = '';
  const queued = new Promise<void>((resolve) => {
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
      if (stderr.includes('waiting for it to finish')) resolve();
    });
  });
  // 'close', not 'exit': its stderr pipe is closed too when the test ends.
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  await queued;
  await server.stop();
  t.is(await exited, 1);
  const id = /run (\S+) queued on/.exec(stderr)?.[1];
  t.truthy(id, stderr);
  t.regex(stderr, new RegExp(`lost the server while waiting for run ${id}: .*read it later at ${server.url}/api/runs/${id}`));
  t.false(stderr.includes('    at '), 'no stack trace');
});
