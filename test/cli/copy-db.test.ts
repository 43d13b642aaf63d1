/**
 * `lanes copy-db`: a SQLite deployment moved to PostgreSQL keeps its runs
 * (ids, states, steps, logs, listing order), its credentials, its queue
 * flags and its run-token key; a new run after the move gets the next place
 * in the listing. A real SQLite file, a real PostgreSQL, the real command.
 */
import test from 'ava';
import { join } from 'node:path';
import { tempDir } from '../engine/helpers.ts';
import { api, claim, completeRunHappily, connectWorker, joinQueue, joinRun, startServer, submitRun } from '../server/helpers.ts';
import { postgresDatabase, usePostgres } from '../server/store-harness.ts';
import { runLanes } from './helpers.ts';

void usePostgres().catch(() => undefined);

interface Listed {
  runs: Array<{ id: string; state: string }>;
}

test('copy-db moves runs, logs, credentials, queue flags and the run-token key from SQLite to PostgreSQL', async (t) => {
  const dir = await tempDir(t, 'lanes-copy-db-');
  const dbPath = join(dir, 'lanes.db');
  const before = await startServer(t, { dbPath });
  const done = await submitRun(before, { queue: 'copied' });
  const socket = await connectWorker(t, before);
  const { channel } = await joinQueue(socket, { copied: 1 });
  const [claimed] = await claim(channel, ['copied'], 1);
  if (!claimed) throw new Error('nothing claimed');
  await completeRunHappily(await joinRun(socket, claimed), done);
  const waiting: string[] = [];
  for (let i = 0; i < 3; i += 1) waiting.push(await submitRun(before, { queue: 'later' }));
  t.is((await api(before, 'PUT', '/api/credentials/c1', { user: 'u' })).status, 200);
  t.is((await api(before, 'POST', '/api/queues/later/suspend')).status, 200);
  const listedBefore = (await api<Listed>(before, 'GET', '/api/runs')).body.runs;
  const logsBefore = (await api(before, 'GET', `/api/runs/${done}/logs`)).body;
  const publicKey = before.publicKeyPem;
  await before.stop();

  const url = await postgresDatabase();
  const copied = await runLanes(['copy-db', '--from', dbPath, '--to', url]);
  t.is(copied.code, 0, copied.stderr);
  t.regex(copied.stdout, /copied .* runs 4, .*log_lines \d+.*; run-token key/);

  const after = await startServer(t, { dbPath: url });
  t.is(after.publicKeyPem, publicKey);
  t.deepEqual((await api<Listed>(after, 'GET', '/api/runs')).body.runs.map((run) => [run.id, run.state]), listedBefore.map((run) => [run.id, run.state]));
  t.deepEqual((await api(after, 'GET', `/api/runs/${done}/logs`)).body, logsBefore);
  const queues = (await api<{ queues: Array<{ name: string; suspended: boolean }> }>(after, 'GET', '/api/queues')).body.queues;
  t.true(queues.find((queue) => queue.name === 'later')?.suspended);
  const next = await submitRun(after, { queue: 'new' });
  t.is((await api<Listed>(after, 'GET', '/api/runs?limit=1')).body.runs[0]?.id, next);

  // A second copy into a database that holds runs is refused, and changes nothing.
  const again = await runLanes(['copy-db', '--from', dbPath, '--to', url]);
  t.is(again.code, 1);
  t.regex(again.stderr.trim(), /^lanes: copy-db failed: the target database postgres:\/\/.* already holds runs$/);
  t.is((await api<Listed>(after, 'GET', '/api/runs')).body.runs.length, 5);
});

test('copy-db with a missing --from or a --to that is not a postgres URL is one line and exit 2', async (t) => {
  const noTo = await runLanes(['copy-db', '--from', 'x.db', '--to', 'mysql://u:secretpw@h/db']);
  t.is(noTo.code, 2);
  t.regex(noTo.stderr.trim(), /^lanes: invalid --to .*must be a postgres:\/\/ URL/);
  t.false(noTo.stderr.includes('secretpw'));
  const noFrom = await runLanes(['copy-db', '--to', 'postgres://h/db']);
  t.is(noFrom.code, 2);
  t.regex(noFrom.stderr.trim(), /^lanes: invalid --from/);
  const missing = await runLanes(['copy-db', '--from', '/nonexistent/lanes.db', '--to', 'postgres://127.0.0.1:1/db']);
  t.is(missing.code, 1);
  t.is(missing.stderr.trim(), 'lanes: copy-db failed: no SQLite database at /nonexistent/lanes.db');
});
