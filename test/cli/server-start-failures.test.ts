/**
 * Issue 12, item 2: every way `lanes server` can fail to start is one line
 * on stderr naming the cause and the value, exit 2 for bad configuration and
 * 1 for the environment, no stack trace; and a server whose database fails
 * later refuses writes with 503 and says so on `/readyz`.
 */
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { tempDir } from '../engine/helpers.ts';
import { api, simplePlan, startServer } from '../server/helpers.ts';
import { runLanes } from './helpers.ts';

// With an API token, as the server demands beyond loopback (and otherwise announces one it made up, on stderr).
const SECRET = { WORKER_SECRET: 'start-failure-secret', LANES_API_TOKEN: 'start-failure-api-token-0123456789' };

/** chattr +i makes a file immutable even for root (who ignores modes): the one read-only file a root test can make. */
function immutable(path: string, on: boolean): boolean {
  try {
    execFileSync('chattr', [on ? '+i' : '-i', path], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const canChattr = ((): boolean => {
  const probe = join(tmpdir(), `lanes-chattr-probe-${process.pid}`);
  writeFileSync(probe, '');
  const ok = immutable(probe, true);
  immutable(probe, false);
  rmSync(probe, { force: true });
  return ok;
})();

function assertOneLine(t: import('ava').ExecutionContext, stderr: string, pattern: RegExp): void {
  const lines = stderr.trim().split('\n');
  t.is(lines.length, 1, `one line: ${stderr}`);
  t.regex(lines[0] ?? '', pattern);
  t.false(stderr.includes('    at '), 'no stack trace');
}

test('a port in use: one line naming the address and EADDRINUSE, exit 1', async (t) => {
  const busy = createServer();
  await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
  t.teardown(() => busy.close());
  const port = (busy.address() as AddressInfo).port;
  const result = await runLanes(['server', '--port', String(port), '--db', ':memory:'], SECRET);
  t.is(result.code, 1);
  assertOneLine(t, result.stderr, new RegExp(`^lanes: cannot listen on 127\\.0\\.0\\.1:${port}: EADDRINUSE`));
});

for (const host of ['nope.invalid', '192.0.2.1']) {
  test(`a --host that is no address of this machine (${host}): one line naming it, exit 2`, async (t) => {
    const result = await runLanes(['server', '--port', '0', '--host', host, '--db', ':memory:'], SECRET);
    t.is(result.code, 2);
    assertOneLine(t, result.stderr, new RegExp(`^lanes: invalid --host "${host.replaceAll('.', '\\.')}": E[A-Z_]+ \\(not an address of this machine\\)`));
  });
}

test('a --db that is a directory: one line naming the path, exit 2', async (t) => {
  const dir = await tempDir(t, 'lanes-db-dir-');
  const result = await runLanes(['server', '--port', '0', '--db', dir], SECRET);
  t.is(result.code, 2);
  assertOneLine(t, result.stderr, new RegExp(`^lanes: --db ${dir} is a directory, not a SQLite database file$`));
});

test('a --db in a folder that does not exist: one line naming the folder, exit 2', async (t) => {
  const dir = await tempDir(t, 'lanes-db-missing-');
  const result = await runLanes(['server', '--port', '0', '--db', join(dir, 'missing', 'lanes.db')], SECRET);
  t.is(result.code, 2);
  assertOneLine(t, result.stderr, new RegExp(`^lanes: --db ${dir}/missing/lanes\\.db: the folder ${dir}/missing does not exist$`));
});

test('a --db that is not SQLite: one line naming the path, exit 2, the file untouched', async (t) => {
  const dir = await tempDir(t, 'lanes-db-notsqlite-');
  const path = join(dir, 'notes.txt');
  await writeFile(path, 'these are my notes, not a database\n'.repeat(20));
  const result = await runLanes(['server', '--port', '0', '--db', path], SECRET);
  t.is(result.code, 2);
  assertOneLine(t, result.stderr, new RegExp(`^lanes: --db ${path} is not a SQLite database`));
});


// Needs root and a file system with immutable files (ext4, xfs): elsewhere a test process cannot make a file it cannot write.
(canChattr ? test : test.skip)('a database that cannot be written: the server does not start, one line, exit 1', async (t) => {
  const dir = await tempDir(t, 'lanes-db-readonly-');
  const path = join(dir, 'lanes.db');
  const db = new DatabaseSync(path);
  db.exec('PRAGMA journal_mode = WAL; CREATE TABLE kept (a)');
  db.close();
  t.true(immutable(path, true));
  t.teardown(() => immutable(path, false));
  const result = await runLanes(['server', '--port', '0', '--db', path], SECRET);
  t.is(result.code, 1);
  assertOneLine(t, result.stderr, new RegExp(`^lanes: cannot write the database ${path}: attempt to write a readonly database`));
});

(canChattr ? test : test.skip)('a database that fails while serving: writes answer 503, /readyz says why, reads still work', async (t) => {
  const dir = await tempDir(t, 'lanes-db-fails-');
  const path = join(dir, 'lanes.db');
  const server = await startServer(t, { dbPath: path });
  const first = await api<{ id: string }>(server, 'POST', '/api/runs', { queue: 'manual', plan: simplePlan() });
  t.is(first.status, 201);
  // The write-ahead log turns immutable under the running server, as a failing disk or a read-only remount would.
  t.true(immutable(`${path}-wal`, true));
  t.teardown(() => immutable(`${path}-wal`, false));

  const refused = await api<{ error: string; message: string }>(server, 'POST', '/api/runs', { queue: 'manual', plan: simplePlan() });
  t.is(refused.status, 503);
  t.is(refused.body.error, 'unavailable');
  t.regex(refused.body.message, /^the database cannot be written: /);
  const ready = await api<{ status: string; reason: string }>(server, 'GET', '/readyz');
  t.is(ready.status, 503);
  t.regex(ready.body.reason, /^the database cannot be written: /);
  const read = await api<{ id: string }>(server, 'GET', `/api/runs/${first.body.id}`);
  t.is(read.status, 200, 'reads still work');

  // Writable again: the next write succeeds and the server is ready again.
  t.true(immutable(`${path}-wal`, false));
  const again = await api(server, 'POST', '/api/runs', { queue: 'manual', plan: simplePlan() });
  t.is(again.status, 201);
  t.is((await api(server, 'GET', '/readyz')).status, 200);
});
