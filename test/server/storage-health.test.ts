/**
 * Issue 12, item 2, on PostgreSQL: a server whose database goes away while
 * it serves (the PostgreSQL server stops) answers writes with 503 and says
 * why on `/readyz`, instead of 500s; reads that need the database fail too,
 * but the process lives on. (The SQLite case is in
 * test/cli/server-start-failures.test.ts.)
 */
import test from 'ava';
import { startPostgres } from '../fixtures/postgres-cluster.ts';
import { api, simplePlan, startServer } from './helpers.ts';

test('PostgreSQL stops under a serving server: writes answer 503, /readyz says the database cannot be written', async (t) => {
  const cluster = await startPostgres();
  let stopped = false;
  t.teardown(async () => {
    if (!stopped) await cluster.stop();
  });
  const server = await startServer(t, { dbPath: await cluster.createDatabase() });
  const first = await api<{ id: string }>(server, 'POST', '/api/runs', { queue: 'manual', plan: simplePlan() });
  t.is(first.status, 201);

  await cluster.stop();
  stopped = true;
  const refused = await api<{ error: string; message: string }>(server, 'POST', '/api/runs', { queue: 'manual', plan: simplePlan() });
  t.is(refused.status, 503);
  t.is(refused.body.error, 'unavailable');
  t.regex(refused.body.message, /^the database cannot be written: /);
  const ready = await api<{ status: string; reason?: string }>(server, 'GET', '/readyz');
  t.is(ready.status, 503);
  t.regex(ready.body.reason ?? '', /^the database cannot be written: /);
});
