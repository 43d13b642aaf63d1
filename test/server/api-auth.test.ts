/**
 * The doors of the JSON API (docs/security.md): every `/api/*` route wants
 * the bearer token, says whether it was missing or wrong, refuses writes that
 * are not JSON, sends no CORS header; health and metrics stay open.
 */
import test from 'ava';
import { LanesServer } from '../../src/server/index.ts';
import { ApiTokens, isLoopbackHost } from '../../src/server/api-auth.ts';
import { api, simplePlan, startServer, submitRun, TEST_API_TOKEN, TEST_SECRET, testLogger } from './helpers.ts';

/** Every route of the API with a request that succeeds when the token is right, and its status then. */
function routes(runId: string): Array<{ method: string; path: string; body?: unknown; status: number }> {
  return [
    { method: 'POST', path: '/api/runs', body: { plan: simplePlan() }, status: 201 },
    { method: 'GET', path: '/api/runs', status: 200 },
    { method: 'GET', path: `/api/runs/${runId}`, status: 200 },
    { method: 'GET', path: `/api/runs/${runId}/logs`, status: 200 },
    { method: 'GET', path: '/api/queues', status: 200 },
    { method: 'POST', path: '/api/queues/manual/suspend', status: 200 },
    { method: 'POST', path: '/api/queues/manual/resume', status: 200 },
    { method: 'GET', path: '/api/workers', status: 200 },
    { method: 'PUT', path: '/api/credentials/c1', body: { user: 'u' }, status: 200 },
    { method: 'GET', path: '/api/dashboard', status: 200 },
    { method: 'POST', path: `/api/runs/${runId}/retry`, status: 409 },
    { method: 'POST', path: `/api/runs/${runId}/cancel`, status: 200 },
    { method: 'GET', path: '/api/nothing-here', status: 404 },
  ];
}

test('every API route without a token is 401 missing_token, with a wrong one 401 invalid_token, with the right one as before', async (t) => {
  const server = await startServer(t);
  const runId = await submitRun(server);
  const before = (await server.store.listRuns({ limit: 100 })).length;
  for (const route of routes(runId)) {
    const missing = await api(server, route.method, route.path, route.body, { authorization: '' });
    t.is(missing.status, 401, `${route.method} ${route.path} without a token`);
    t.like(missing.body, { error: 'missing_token', field: 'authorization' });
    const wrong = await api(server, route.method, route.path, route.body, { authorization: 'Bearer test-api-token-0123456780' });
    t.is(wrong.status, 401, `${route.method} ${route.path} with a wrong token`);
    t.like(wrong.body, { error: 'invalid_token', field: 'authorization', message: 'the API token is wrong' });
    const basic = await api(server, route.method, route.path, route.body, { authorization: `Basic ${Buffer.from(`u:${TEST_API_TOKEN}`).toString('base64')}` });
    t.is(basic.status, 401, `${route.method} ${route.path} with another scheme`);
  }
  t.is((await server.store.listRuns({ limit: 100 })).length, before, 'nothing was stored by refused requests');
  t.false((await server.store.queueStats()).some((queue) => queue.suspended), 'no queue was suspended');
  for (const route of routes(runId)) {
    const result = await api(server, route.method, route.path, route.body);
    t.is(result.status, route.status, `${route.method} ${route.path} with the token: ${JSON.stringify(result.body)}`);
  }
});

test('a refused request names the scheme in WWW-Authenticate; an encoded path cannot slip past', async (t) => {
  const server = await startServer(t);
  const response = await fetch(`${server.url}/api/runs`);
  t.is(response.status, 401);
  t.is(response.headers.get('www-authenticate'), 'Bearer error="invalid_request"');
  for (const path of ['/%61pi/runs', '/api%2fruns', '//api/runs', '/API/runs', '/api']) {
    t.is((await fetch(`${server.url}${path}`)).status, 401, path);
  }
});

test('health and metrics answer without a token; /metrics holds no run ids', async (t) => {
  const server = await startServer(t);
  const runId = await submitRun(server, { queue: 'manual' });
  t.is((await fetch(`${server.url}/livez`)).status, 200);
  t.is((await fetch(`${server.url}/readyz`)).status, 200);
  const metrics = await fetch(`${server.url}/metrics`);
  t.is(metrics.status, 200);
  const text = await metrics.text();
  t.regex(text, /lanes_runs\{queue="manual",state="available"\} 1/);
  t.false(text.includes(runId));
});

test('a write that is not application/json is 415 and stores nothing; no CORS header is ever sent', async (t) => {
  const server = await startServer(t);
  const body = JSON.stringify({ plan: simplePlan() });
  for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/jsonp']) {
    const result = await api(server, 'POST', '/api/runs', body, { 'content-type': type, origin: 'http://evil.example' });
    t.is(result.status, 415, type);
    t.like(result.body, { error: 'unsupported_media_type', field: 'content-type' });
  }
  const untyped = await fetch(`${server.url}/api/runs`, { method: 'POST', body: new Blob([body]), headers: { authorization: `Bearer ${TEST_API_TOKEN}` } });
  t.is(untyped.status, 415, 'a body without a content type');
  t.is((await api(server, 'POST', '/api/runs', body, { 'content-type': 'application/json; charset=utf-8' })).status, 201);
  t.is((await server.store.listRuns({ limit: 10 })).length, 1);

  const preflight = await fetch(`${server.url}/api/runs`, {
    method: 'OPTIONS',
    headers: { origin: 'http://evil.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization,content-type' },
  });
  t.false([...preflight.headers.keys()].some((name) => name.startsWith('access-control-')), 'no CORS header on a preflight');
  const answered = await fetch(`${server.url}/api/runs`, { headers: { origin: 'http://evil.example', authorization: `Bearer ${TEST_API_TOKEN}` } });
  t.is(answered.status, 200);
  t.false([...answered.headers.keys()].some((name) => name.startsWith('access-control-')), 'no CORS header on an answer');
});

test('several tokens are valid at once (rotation); a server with none refuses every API call', async (t) => {
  const rotated = await startServer(t, { apiTokens: ['old-token-aaaaaaaaaaaa', 'new-token-bbbbbbbbbbbb'] });
  for (const token of ['old-token-aaaaaaaaaaaa', 'new-token-bbbbbbbbbbbb']) {
    t.is((await api(rotated, 'GET', '/api/runs', undefined, { authorization: `Bearer ${token}` })).status, 200);
  }
  t.is((await api(rotated, 'GET', '/api/runs')).status, 401, 'the test token is not one of them');

  const closed = await startServer(t, { apiTokens: [] });
  const result = await api(closed, 'GET', '/api/runs');
  t.is(result.status, 401);
  t.regex(String((result.body as { message: string }).message), /no API token configured/);
});

test('a server beyond loopback without a token refuses to be created; short tokens are refused', async (t) => {
  await t.throwsAsync(LanesServer.create({ port: 0, host: '0.0.0.0', dbPath: ':memory:', secret: TEST_SECRET, logger: testLogger() }), {
    message: /apiTokens is required to listen on 0\.0\.0\.0, beyond loopback/,
  });
  await t.throwsAsync(LanesServer.create({ port: 0, dbPath: ':memory:', secret: TEST_SECRET, apiTokens: ['short'], logger: testLogger() }), {
    message: /at least 16 characters/,
  });
  t.true(isLoopbackHost('127.0.0.1'));
  t.true(isLoopbackHost('::1'));
  t.true(isLoopbackHost('localhost'));
  t.false(isLoopbackHost('0.0.0.0'));
  t.false(isLoopbackHost('192.168.1.4'));
  t.false(isLoopbackHost('::'));
});

test('ApiTokens matches only whole tokens', (t) => {
  const tokens = new ApiTokens(['abcdefghijklmnopqrstuvwxyz']);
  t.true(tokens.matches('abcdefghijklmnopqrstuvwxyz'));
  t.false(tokens.matches('abcdefghijklmnopqrstuvwxy'));
  t.false(tokens.matches('abcdefghijklmnopqrstuvwxyzz'));
  t.false(tokens.matches(''));
  t.deepEqual(tokens.check('bearer   abcdefghijklmnopqrstuvwxyz'), { ok: true });
  t.like(tokens.check('Bearer'), { ok: false, error: 'missing_token' });
  t.like(tokens.check(undefined), { ok: false, error: 'missing_token' });
});
