/**
 * The server's own states, from the outside: a stop asked while it starts,
 * repeated start() and stop() calls, and what a stop does to `?wait`
 * requests held open (RunLifecycle's waiters belong to its running state).
 */
import test from 'ava';
import { LanesServer, ServerError } from '../../src/server/index.ts';
import { TEST_API_TOKEN, TEST_SECRET, api, simplePlan, startServer, testLogger, waitFor } from './helpers.ts';

async function createServer(): Promise<LanesServer> {
  return LanesServer.create({ port: 0, dbPath: ':memory:', secret: TEST_SECRET, apiTokens: [TEST_API_TOKEN], logger: testLogger() });
}

test('a stop() asked while the server starts waits for the start, then stops; start() and stop() again return the promises in flight', async (t) => {
  const server = await createServer();
  t.teardown(() => server.stop());
  const started = server.start();
  t.is(server.state, 'starting');
  t.is(server.start(), started, 'a second start() is the start in flight');
  const stopping = server.stop();
  t.is(server.stop(), stopping, 'a second stop() is the stop in flight');
  await started;
  await stopping;
  t.is(server.state, 'stopped');
  t.true(server.port > 0, 'the port it listened on stays known');
  t.is(server.start(), started, 'start() after the stop answers with the start that was made');
});

test('a server stopped before it started cannot start: start() rejects naming its state', async (t) => {
  const server = await createServer();
  await server.stop();
  t.is(server.state, 'stopped');
  await t.throwsAsync(server.start(), { instanceOf: ServerError, message: 'cannot start a server that is stopped' });
  t.throws(() => server.port, { message: 'the server is not listening' });
});

test('a ?wait request held open when the server stops is answered 503 at once', async (t) => {
  const server = await startServer(t);
  // Nothing will ever run it: no worker is connected.
  const held = api<{ error: string }>(server, 'POST', '/api/runs?wait=60', { queue: 'held', plan: simplePlan() });
  await waitFor(async () => ((await api<{ runs: unknown[] }>(server, 'GET', '/api/runs?queue=held')).body.runs.length === 1 ? true : null), { message: 'the run to be stored' });
  const stopping = server.stop();
  const answer = await held;
  t.is(answer.status, 503);
  t.is(answer.body.error, 'unavailable');
  await stopping;
});
