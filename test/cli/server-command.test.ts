import test from 'ava';
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { LANES_BIN, runLanes } from './helpers.ts';
import { LanesApiClient } from '../../src/client/lanes-api-client.ts';

/** Starts `lanes server` and resolves with its port once it logs "listening". */
async function startServerProcess(args: string[], env: Record<string, string>) {
  const child = spawn(process.execPath, [LANES_BIN, 'server', '--port', '0', ...args], {
    env: { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? '/tmp', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      output += chunk;
      const match = /"msg":"listening"/.test(output) ? /"port":(\d+)/.exec(output) : null;
      if (match?.[1]) resolve(Number(match[1]));
    });
    child.on('exit', (code) => reject(new Error(`server exited ${code}: ${output}`)));
  });
  return { child, port, output: () => output };
}

test('lanes server listens on a free port, keeps runs in its database file, and stops on SIGTERM', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'lanes-server-cli-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const apiToken = 'server-cli-api-token-42';
  const env = { WORKER_SECRET: 'server-cli-secret-1', LANES_API_TOKEN: apiToken };
  const db = join(dir, 'lanes.db');

  const first = await startServerProcess(['--db', db], env);
  t.teardown(() => first.child.kill('SIGKILL'));
  const client = new LanesApiClient(`http://127.0.0.1:${first.port}`, { apiToken });
  const submitted = await client.submitRun({ queue: 'manual', plan: { jobs: [{ id: 'j', body: 'fn(s => s)', adaptor: '@openfn/language-common@3.3.4' }], triggers: [{ id: 't' }], edges: [{ id: 'e', source_trigger_id: 't', target_job_id: 'j' }] } });
  t.is(submitted.state, 'available');
  first.child.kill('SIGTERM');
  const [code] = (await once(first.child, 'exit')) as [number | null];
  t.is(code, 0);
  t.false(first.output().includes('server-cli-secret-1'));
  t.false(first.output().includes(apiToken), 'the API token is never logged');

  const second = await startServerProcess(['--db', db], env);
  t.teardown(() => second.child.kill('SIGKILL'));
  const run = await new LanesApiClient(`http://127.0.0.1:${second.port}`, { apiToken }).getRun(submitted.id);
  t.is(run.state, 'available');
  t.is(run.queue, 'manual');
  second.child.kill('SIGTERM');
  await once(second.child, 'exit');
});

test('lanes server without a secret exits 2 with one line', async (t) => {
  const result = await runLanes(['server', '--port', '0', '--db', ':memory:']);
  t.is(result.code, 2);
  t.regex(result.stderr.trim(), /^lanes: invalid --secret\/WORKER_SECRET.*required/);
});

test('lanes server with a bad port exits 2 naming it', async (t) => {
  const result = await runLanes(['server', '--port', 'eighty', '-s', 'x']);
  t.is(result.code, 2);
  t.regex(result.stderr.trim(), /^lanes: invalid --port\/LANES_PORT \(flag --port\): "eighty"/);
});

test('lanes server beyond loopback without an API token exits 2 with one line', async (t) => {
  const result = await runLanes(['server', '--port', '0', '--db', ':memory:', '--host', '0.0.0.0', '-s', 'x']);
  t.is(result.code, 2);
  t.is(result.stderr.trim().split('\n').length, 1, result.stderr);
  t.regex(result.stderr.trim(), /^lanes: invalid --api-token\/LANES_API_TOKEN \(flag --host\): is required to listen on 0\.0\.0\.0, beyond loopback/);
});

test('lanes server with a short API token exits 2 without quoting it; a token file is read', async (t) => {
  const short = await runLanes(['server', '--port', '0', '--db', ':memory:', '-s', 'x'], { LANES_API_TOKEN: 'tiny-secret' });
  t.is(short.code, 2);
  t.regex(short.stderr.trim(), /^lanes: invalid --api-token\/LANES_API_TOKEN \(env LANES_API_TOKEN\): "\[redacted\]" token 1 must be at least 16 characters, got 11$/);
  t.false(short.stderr.includes('tiny-secret'));
  const missing = await runLanes(['server', '--port', '0', '--db', ':memory:', '-s', 'x', '--api-token-file', '/nonexistent/tokens']);
  t.is(missing.code, 2);
  t.regex(missing.stderr.trim(), /^lanes: invalid --api-token-file\/LANES_API_TOKEN_FILE \(flag --api-token-file\): "\/nonexistent\/tokens" cannot be read: ENOENT$/);

  const dir = await mkdtemp(join(tmpdir(), 'lanes-token-file-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'tokens');
  await writeFile(file, '# rotated monthly\nfile-token-aaaaaaaaaaaa\n\nfile-token-bbbbbbbbbbbb\n');
  const server = await startServerProcess(['--db', ':memory:', '--api-token-file', file], { WORKER_SECRET: 'x' });
  t.teardown(() => server.child.kill('SIGKILL'));
  const url = `http://127.0.0.1:${server.port}`;
  t.is((await new LanesApiClient(url, { apiToken: 'file-token-bbbbbbbbbbbb' }).listRuns({})) !== null, true);
  await t.throwsAsync(new LanesApiClient(url).listRuns({}), { message: /HTTP 401/ });
  server.child.kill('SIGTERM');
  await once(server.child, 'exit');
});

test('lanes server on loopback without a token makes one, prints it once on stderr and never logs it', async (t) => {
  const server = await startServerProcess(['--db', ':memory:'], { WORKER_SECRET: 'x' });
  t.teardown(() => server.child.kill('SIGKILL'));
  const token = /the JSON API takes this one until the server stops: ([0-9a-f]{48})/.exec(server.output())?.[1];
  if (!token) return t.fail(server.output());
  const url = `http://127.0.0.1:${server.port}`;
  t.like(await new LanesApiClient(url, { apiToken: token }).listRuns({}), { runs: [] });
  t.is(server.output().split(token).length, 2, 'printed exactly once');
  server.child.kill('SIGTERM');
  await once(server.child, 'exit');
});
