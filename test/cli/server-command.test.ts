import test from 'ava';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
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
  const env = { WORKER_SECRET: 'server-cli-secret-1' };
  const db = join(dir, 'lanes.db');

  const first = await startServerProcess(['--db', db], env);
  t.teardown(() => first.child.kill('SIGKILL'));
  const client = new LanesApiClient(`http://127.0.0.1:${first.port}`);
  const submitted = await client.submitRun({ queue: 'manual', plan: { jobs: [{ id: 'j', body: 'fn(s => s)', adaptor: '@openfn/language-common@3.3.4' }], triggers: [{ id: 't' }], edges: [{ id: 'e', source_trigger_id: 't', target_job_id: 'j' }] } });
  t.is(submitted.state, 'available');
  first.child.kill('SIGTERM');
  const [code] = (await once(first.child, 'exit')) as [number | null];
  t.is(code, 0);
  t.false(first.output().includes('server-cli-secret-1'));

  const second = await startServerProcess(['--db', db], env);
  t.teardown(() => second.child.kill('SIGKILL'));
  const run = await new LanesApiClient(`http://127.0.0.1:${second.port}`).getRun(submitted.id);
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
