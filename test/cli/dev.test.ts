/**
 * `lanes dev` (what `npm start` runs) through the real binary: it starts a
 * server and a worker, submits the examples, prints a line as each finishes,
 * and stops both cleanly on SIGINT. Skipped, with a visible message, when the
 * registry cannot be reached (the examples need @openfn/language-common).
 */
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { registryServes } from '../registry.ts';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdir } from 'node:fs/promises';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LanesApiClient } from '../../src/client/lanes-api-client.ts';
import { readWorkflow } from '../../src/cli/read-workflow.ts';
import { firstFreePort } from '../../src/cli/free-port.ts';
import { waitFor } from '../server/helpers.ts';
import { descendants, isAlive } from '../reliability/process-cluster.ts';
import { tempDir } from '../engine/helpers.ts';
import { LANES_BIN, runLanes } from './helpers.ts';
import { launchChromium } from '../dashboard/browser.ts';

const EXAMPLES = fileURLToPath(new URL('../../examples/', import.meta.url));

const reachable = registryServes('@openfn/language-common', '3.3.4');

if (!reachable) {
  test('dev: registry unreachable', (t) => {
    t.log('SKIPPED: the npm registry is unreachable, the examples cannot run');
    t.pass();
  });
}

(reachable ? test.serial : test.skip)('lanes dev runs the examples to success, takes a submit with the token it printed, and stops cleanly on SIGINT', async (t) => {
  t.timeout(150_000);
  const dir = await tempDir(t, 'lanes-dev-');
  const port = await firstFreePort(4400 + Math.floor(Math.random() * 1000));
  const child = spawn(process.execPath, [LANES_BIN, 'dev', '--db', join(dir, 'dev.db'), '--port', String(port)], {
    cwd: dir,
    env: { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? '/tmp' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let output = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));

  await waitFor(() => (output.match(/✓ run /g) ?? []).length >= 3 || child.exitCode !== null, { timeoutMs: 120_000, message: 'three example runs to finish' }).catch((error: unknown) => {
    t.log(output);
    throw error;
  });
  t.regex(output, /Lanes is running\./);
  t.regex(output, new RegExp(`server +http://127\\.0\\.0\\.1:${port}`));
  t.regex(output, /lanes fast_lane:1 manual>\*:4/);
  t.regex(output, /✓ run \S+ \(fast_lane\) success/);
  t.regex(output, /✓ run \S+ \(manual\) success/);
  t.regex(output, /✓ run \S+ \(default\) success/);
  t.notRegex(output, /✗ run/);

  // The banner's token opens the API to `lanes submit --wait`; without it the API answers 401.
  const token = /token +(\S+)/.exec(output)?.[1] ?? '';
  t.regex(token, /^[0-9a-f]{48}$/);
  const serverUrl = `http://127.0.0.1:${port}`;
  const submitted = await runLanes(['submit', 'examples/hello.json', '--queue', 'fast_lane', '--wait', '--server', serverUrl], { LANES_API_TOKEN: token });
  t.is(submitted.code, 0, submitted.stderr);
  t.is((JSON.parse(submitted.stdout) as { state: string }).state, 'success');
  const refused = await runLanes(['submit', 'examples/hello.json', '--server', serverUrl]);
  t.is(refused.code, 2);
  t.regex(refused.stderr, /HTTP 401.*--api-token/);
  t.is((await fetch(`${serverUrl}/api/runs`)).status, 401);

  // The banner's first address opens the dashboard signed in: the worker's lanes show, live.
  const link = /open +(\S+)/.exec(output)?.[1] ?? '';
  t.is(link, `${serverUrl}/#token=${token}`);
  const browser = await launchChromium();
  try {
    const page = await browser.newPage();
    await page.goto(link);
    await page.locator('.status-live').waitFor();
    await page.locator('.lane[data-lane="fast_lane"]').waitFor();
    await page.locator('.lane[data-lane="manual>*"]').waitFor();
    t.false(page.url().includes(token));
  } finally {
    await browser.close();
  }

  child.kill('SIGINT');
  const [code] = (await once(child, 'exit')) as [number | null];
  t.is(code, 0, output);
  t.regex(output, /stopped\n/);
});

/** `lanes dev` in `dir`, its output gathered; SIGKILLed at teardown if still running. */
function startDev(t: ExecutionContext, dir: string, args: string[]) {
  const db = args.includes('--db') ? [] : ['--db', join(dir, 'dev.db')];
  const child = spawn(process.execPath, [LANES_BIN, 'dev', ...db, ...args], {
    cwd: dir,
    env: { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? '/tmp' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  const state = { output: '' };
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (state.output += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (state.output += chunk));
  const exited = once(child, 'exit').then(([code]) => code as number | null);
  return { child, state, exited };
}

(reachable ? test.serial : test.skip)('lanes dev prints a run that finishes during the drain, and a second dev on the same database does not replay old runs', async (t) => {
  t.timeout(150_000);
  const dir = await tempDir(t, 'lanes-dev-drain-');
  const port = await firstFreePort(5400 + Math.floor(Math.random() * 1000));
  const first = startDev(t, dir, ['--port', String(port)]);
  await waitFor(() => (first.state.output.match(/✓ run /g) ?? []).length >= 3 || first.child.exitCode !== null, { timeoutMs: 120_000, message: 'the examples to finish' });
  const oldIds = [...first.state.output.matchAll(/✓ run (\S+)/g)].map((match) => match[1]!);
  t.is(oldIds.length, 3, first.state.output);

  const client = new LanesApiClient(`http://127.0.0.1:${port}`, { apiToken: /token +(\S+)/.exec(first.state.output)?.[1] ?? '' });
  const slow = await readWorkflow(join(EXAMPLES, 'slow.json'));
  const draining = await client.submitRun({ ...slow, input: { data: { seconds: 3 } } });
  await waitFor(async () => (await client.getRun(draining.id)).state === 'started', { timeoutMs: 30_000, message: 'the slow run to start' });
  first.child.kill('SIGINT');
  t.is(await first.exited, 0, first.state.output);
  const afterStop = first.state.output.slice(first.state.output.indexOf('stopping: draining'));
  t.regex(afterStop, new RegExp(`✓ run ${draining.id} \\(default\\) success`), 'the run that ended during the drain is printed');

  const second = startDev(t, dir, ['--port', String(port), '--no-examples']);
  await waitFor(() => second.state.output.includes('Lanes is running') || second.child.exitCode !== null, { timeoutMs: 60_000, message: 'the second dev to start' });
  // A new run: once its line is printed, the progress poll has read the database's old runs too.
  const fresh = await new LanesApiClient(`http://127.0.0.1:${port}`, { apiToken: /token +(\S+)/.exec(second.state.output)?.[1] ?? '' }).submitRun(await readWorkflow(join(EXAMPLES, 'hello.json')));
  await waitFor(() => second.state.output.includes(`run ${fresh.id}`) || second.child.exitCode !== null, { timeoutMs: 60_000, message: 'the new run to be printed' });
  for (const id of [...oldIds, draining.id]) t.false(second.state.output.includes(id), `old run ${id} is not printed again`);
  second.child.kill('SIGINT');
  t.is(await second.exited, 0);
});

test('lanes dev on a port in use: one line naming the port and EADDRINUSE, exit 1, nothing started', async (t) => {
  const dir = await tempDir(t, 'lanes-dev-port-');
  const busy = createServer();
  await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
  t.teardown(() => busy.close());
  const port = (busy.address() as AddressInfo).port;
  const dev = startDev(t, dir, ['--port', String(port), '--no-examples']);
  t.is(await dev.exited, 1);
  t.is(dev.state.output.trim(), `lanes dev: cannot listen on 127.0.0.1:${port}: EADDRINUSE (the port is in use)`);
});

test('lanes dev whose server cannot start exits with the server\'s one line and code, and starts no worker', async (t) => {
  const dir = await tempDir(t, 'lanes-dev-db-');
  await mkdir(join(dir, 'not-a-file.db'));
  const dev = startDev(t, dir, ['--no-examples', '--db', join(dir, 'not-a-file.db')]);
  t.is(await dev.exited, 2, dev.state.output);
  const lines = dev.state.output.trim().split('\n');
  t.is(lines.length, 1, dev.state.output);
  t.regex(lines[0]!, /^lanes: .*not-a-file\.db.* is a directory/);
});

test('lanes dev killed with SIGKILL leaves nothing behind: its server and worker stop on their own', async (t) => {
  const dir = await tempDir(t, 'lanes-dev-kill-');
  const port = await firstFreePort(6400 + Math.floor(Math.random() * 1000));
  const dev = startDev(t, dir, ['--port', String(port), '--no-examples']);
  await waitFor(() => dev.state.output.includes('Lanes is running') || dev.child.exitCode !== null, { timeoutMs: 60_000, message: 'dev to start' });
  const tree = descendants(dev.child.pid!);
  t.true(tree.length >= 2, 'a server and a worker (and the worker\'s engine children)');
  t.teardown(() => {
    for (const pid of tree) if (isAlive(pid)) process.kill(pid, 'SIGKILL');
  });
  dev.child.kill('SIGKILL');
  await dev.exited;
  await waitFor(() => tree.every((pid) => !isAlive(pid)), { timeoutMs: 30_000, message: 'every process dev started to exit' });
});
