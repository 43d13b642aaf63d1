/**
 * `lanes dev` (what `npm start` runs) through the real binary: it starts a
 * server and a worker, submits the examples, prints a line as each finishes,
 * and stops both cleanly on SIGINT. Skipped, with a visible message, when the
 * registry cannot be reached (the examples need @openfn/language-common).
 */
import test from 'ava';
import { registryServes } from '../registry.ts';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { firstFreePort } from '../../src/cli/free-port.ts';
import { waitFor } from '../server/helpers.ts';
import { tempDir } from '../engine/helpers.ts';
import { LANES_BIN, runLanes } from './helpers.ts';

const reachable = registryServes('@openfn/language-common', '3.3.4');

if (!reachable) {
  test('dev: registry unreachable', (t) => {
    t.log('SKIPPED: the npm registry is unreachable, the examples cannot run');
    t.pass();
  });
}

(reachable ? test : test.skip)('lanes dev runs the examples to success, takes a submit with the token it printed, and stops cleanly on SIGINT', async (t) => {
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

  child.kill('SIGINT');
  const [code] = (await once(child, 'exit')) as [number | null];
  t.is(code, 0, output);
  t.regex(output, /stopped\n/);
});
