import { getEventListeners } from 'node:events';
import { createServer } from 'node:net';
import test from 'ava';
import { ApiError, ServerUnreachableError } from '../../src/client/api-error.ts';
import { LanesApiClient } from '../../src/client/lanes-api-client.ts';
import { simplePlan, startServer, TEST_API_TOKEN } from '../server/helpers.ts';

function clientFor(port: number): LanesApiClient {
  return new LanesApiClient(`http://127.0.0.1:${port}/`, { apiToken: TEST_API_TOKEN });
}

test('submits a run and reads it back over keep-alive connections', async (t) => {
  const server = await startServer(t);
  const client = clientFor(server.port);
  const submitted = await client.submitRun({ queue: 'manual', plan: simplePlan(), input: { data: { n: 1 } } });
  t.like(submitted, { state: 'available', queue: 'manual' });
  const run = await client.getRun(submitted.id);
  t.is(run.id, submitted.id);
  const listed = (await client.listRuns({ queue: 'manual' })) as { runs: Array<{ id: string }> };
  t.deepEqual(listed.runs.map((entry) => entry.id), [submitted.id]);
});

test('submitAndWait holds the request open and answers 504 with the run when it does not end in time', async (t) => {
  const server = await startServer(t);
  const client = clientFor(server.port);
  const error = await t.throwsAsync(client.submitAndWait({ queue: 'manual', plan: simplePlan() }, 0.2), { instanceOf: ApiError });
  t.is(error?.status, 504);
  t.like(error?.body, { error: 'timeout', run: { state: 'available', queue: 'manual' } });
});

test('a bad request is an ApiError with the status and the server message', async (t) => {
  const server = await startServer(t);
  const error = await t.throwsAsync(clientFor(server.port).submitRun({ queue: 'no spaces', plan: simplePlan() }), { instanceOf: ApiError });
  t.is(error?.status, 422);
  t.regex(error?.message ?? '', /submit run: HTTP 422: queue: must match .*, got "no spaces"$/);
});

test('a server that is not there is ServerUnreachableError; an unsupported scheme too', async (t) => {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const port = (probe.address() as { port: number }).port;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  await t.throwsAsync(clientFor(port).getRun('x'), { instanceOf: ServerUnreachableError, message: /cannot reach the Lanes server at http:\/\/127\.0\.0\.1/ });
  await t.throwsAsync(new LanesApiClient('ftp://127.0.0.1').getRun('x'), { instanceOf: ServerUnreachableError });
});

test('an abort rejects with the signal reason, and polling leaves no listener behind', async (t) => {
  const server = await startServer(t);
  const client = clientFor(server.port);
  const { id } = await client.submitRun({ queue: 'manual', plan: simplePlan() });
  const controller = new AbortController();
  const waiting = client.waitForRun(id, { pollMs: 10, signal: controller.signal });
  await new Promise((resolve) => setTimeout(resolve, 120));
  t.true(getEventListeners(controller.signal, 'abort').length <= 1, 'one listener at most, whatever the number of polls');
  const reason = new Error('enough');
  controller.abort(reason);
  t.is(await t.throwsAsync(waiting), reason);
  await t.throwsAsync(client.getRun(id, AbortSignal.abort(reason)), { is: reason });
});
