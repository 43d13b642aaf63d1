import { getEventListeners } from 'node:events';
import { createServer as createHttpServer, request as httpRequest } from 'node:http';
import { createServer } from 'node:net';
import test from 'ava';
import { ApiError, InvalidRequestError, ServerUnreachableError, UnexpectedResponseError } from '../../src/client/api-error.ts';
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

test('a bad request is refused by the client with the server\'s own words, before anything is sent', async (t) => {
  const server = await startServer(t);
  const client = clientFor(server.port);
  const error = await t.throwsAsync(client.submitRun({ queue: 'no spaces', plan: simplePlan() }), { instanceOf: InvalidRequestError });
  t.is(error?.field, 'queue');
  t.regex(error?.message ?? '', /^queue: must match .*, got "no spaces"$/);
  const edge = { id: 'e', source_job_id: 'job-1', target_job_id: 'nowhere' };
  const graph = await t.throwsAsync(client.submitAndWait({ plan: { ...simplePlan(), edges: [edge] } }, 1), { instanceOf: InvalidRequestError });
  t.is(graph?.field, 'plan.edges[0].target_job_id');
  // The server would have answered the same: a raw request gets its 422 with that field.
  const raw = await fetch(`http://127.0.0.1:${server.port}/api/runs`, {
    method: 'POST',
    headers: { authorization: `Bearer ${TEST_API_TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify({ queue: 'no spaces', plan: simplePlan() }),
  });
  t.is(raw.status, 422);
  t.like(await raw.json(), { field: 'queue', message: error?.message.slice('queue: '.length) });
  t.is((await client.listRuns({}) as { runs: unknown[] }).runs.length, 0, 'nothing was stored');
});

test('an answer that does not fit the API schema is an UnexpectedResponseError naming the field', async (t) => {
  const odd = createHttpServer((req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end(req.method === 'POST' ? JSON.stringify({ id: 'r1', state: 'weird', queue: 'q' }) : JSON.stringify({ id: 'r1', queue: 'q' }));
  });
  await new Promise<void>((resolve) => odd.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => odd.close(() => resolve())));
  const address = odd.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  const client = clientFor(address.port);
  const submitted = await t.throwsAsync(client.submitRun({ plan: simplePlan() }), { instanceOf: UnexpectedResponseError });
  t.regex(submitted?.message ?? '', /^submit run: the answer does not fit the API: state must be one of available/);
  const read = await t.throwsAsync(client.getRun('r1'), { instanceOf: UnexpectedResponseError });
  t.regex(read?.message ?? '', /^get run r1: the answer does not fit the API: priority /);
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
  // A counting proxy in front of the real server: each poll is a GET that arrives here, and at
  // each one the abort signal's listeners are counted.
  const listenersAtPoll: number[] = [];
  const controller = new AbortController();
  const proxy = createHttpServer((req, res) => {
    if (req.method === 'GET') listenersAtPoll.push(getEventListeners(controller.signal, 'abort').length);
    const upstream = httpRequest({ host: '127.0.0.1', port: server.port, path: req.url, method: req.method, headers: req.headers }, (reply) => {
      res.writeHead(reply.statusCode ?? 502, reply.headers);
      reply.pipe(res);
    });
    // The client aborts a poll in flight: the proxy drops both legs quietly.
    upstream.on('error', () => res.destroy());
    req.on('error', () => upstream.destroy());
    res.on('close', () => upstream.destroy());
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => {
    proxy.closeAllConnections();
    proxy.close(() => resolve());
  }));
  const client = clientFor((proxy.address() as { port: number }).port);
  const { id } = await client.submitRun({ queue: 'manual', plan: simplePlan() });
  const waiting = client.waitForRun(id, { pollMs: 10, signal: controller.signal });
  const deadline = Date.now() + 10_000;
  while (listenersAtPoll.length < 5 && Date.now() < deadline) await new Promise((resolve) => setImmediate(resolve));
  t.true(listenersAtPoll.length >= 5, `the run was polled ${listenersAtPoll.length} times`);
  t.true(listenersAtPoll.every((count) => count <= 1), `listeners at each poll: ${listenersAtPoll.join(', ')}`);
  const reason = new Error('enough');
  controller.abort(reason);
  t.is(await t.throwsAsync(waiting), reason);
  await t.throwsAsync(client.getRun(id, AbortSignal.abort(reason)), { is: reason });
});
