import test from 'ava';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runLanes } from './helpers.ts';

/** A port nothing listens on: bind one, then close it. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

test('a file that does not exist: one line, exit 2', async (t) => {
  const result = await runLanes(['submit', '/nonexistent/flow.json']);
  t.is(result.code, 2);
  t.regex(result.stderr.trim(), /^lanes submit: cannot read \/nonexistent\/flow\.json: ENOENT$/);
});

test('a file that is not JSON: one line, exit 2', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'lanes-submit-'));
  await writeFile(join(dir, 'bad.json'), '{ not json');
  const result = await runLanes(['submit', join(dir, 'bad.json')]);
  t.is(result.code, 2);
  t.is(result.stderr.trim().split('\n').length, 1);
  t.regex(result.stderr, /is not JSON/);
});

test('a server that is down: one line, exit 2', async (t) => {
  const port = await closedPort();
  const result = await runLanes(['submit', 'examples/hello.json', '--server', `http://127.0.0.1:${port}`]);
  t.is(result.code, 2);
  t.is(result.stderr.trim().split('\n').length, 1);
  t.regex(result.stderr, new RegExp(`cannot reach the Lanes server at http://127.0.0.1:${port}`));
});

test('bad --input JSON: one line, exit 2', async (t) => {
  const result = await runLanes(['submit', 'examples/hello.json', '--input', '{oops']);
  t.is(result.code, 2);
  t.regex(result.stderr, /--input is not JSON/);
});

test('a workflow the server would refuse: one line naming the field, exit 2, nothing sent', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'lanes-submit-'));
  await writeFile(join(dir, 'flow.json'), JSON.stringify({ jobs: [{ id: 'a', body: 'fn(s => s)' }] }));
  // Nothing listens on the port: had the body been sent, the error would be "cannot reach".
  const port = await closedPort();
  const result = await runLanes(['submit', join(dir, 'flow.json'), '--server', `http://127.0.0.1:${port}`]);
  t.is(result.code, 2);
  t.is(result.stderr.trim().split('\n').length, 1);
  t.regex(result.stderr, /flow\.json is not a valid run: plan\.jobs\[0\]\.adaptor: must be a non-empty string$/m);
});
