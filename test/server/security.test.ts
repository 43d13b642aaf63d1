import { Writable } from 'node:stream';
import test from 'ava';
import { SignJWT, UnsecuredJWT } from 'jose';
import pino from 'pino';
import WebSocket from 'ws';
import { generateRunKeyPair, signRunToken, signWorkerToken } from '../../src/protocol/index.ts';
import { api, claim, claimedRun, connectWorker, join, joinQueue, push, startServer, submitRun, TEST_SECRET, waitFor } from './helpers.ts';

const ts = () => String(Date.now() * 1000);

function upgradeStatus(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.on('unexpected-response', (_req, res) => {
      resolve(res.statusCode ?? 0);
      ws.terminate();
    });
    ws.on('open', () => {
      resolve(101);
      ws.close();
    });
    ws.on('error', reject);
  });
}

test('no socket without a valid worker token: expired, unsigned, or without a worker_id', async (t) => {
  const server = await startServer(t);
  const base = `${server.workerUrl}/websocket?vsn=2.0.0`;
  const key = new TextEncoder().encode(TEST_SECRET);
  const expired = await new SignJWT({ worker_id: 'w' })
    .setProtectedHeader({ alg: 'HS256' })
    .setIssuedAt(Math.floor(Date.now() / 1000) - 120)
    .setExpirationTime(Math.floor(Date.now() / 1000) - 60)
    .setIssuer('urn:openfn:worker')
    .sign(key);
  const unsigned = new UnsecuredJWT({ worker_id: 'w' }).setIssuer('urn:openfn:worker').encode();
  const anonymous = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setIssuer('urn:openfn:worker').sign(key);
  for (const token of [expired, unsigned, anonymous, '', 'a.b.c']) {
    t.is(await upgradeStatus(`${base}&token=${encodeURIComponent(token)}`), 401, token);
  }
  t.is(await upgradeStatus(`${base}&token=${await signWorkerToken(TEST_SECRET, 'w')}`), 101);
});

test('a run token opens only its own run: forged keys and worker-secret tokens are refused', async (t) => {
  const server = await startServer(t);
  const runId = await submitRun(server);
  const socket = await connectWorker(t, server);
  const { channel: queue } = await joinQueue(socket);
  const [claimed] = await claim(queue, ['*']);
  if (!claimed) return t.fail();
  const now = Math.floor(Date.now() / 1000);
  const forger = await generateRunKeyPair();
  const forged = signRunToken(forger.privateKey, runId, { nowSeconds: now, expiresAtSeconds: now + 600 });
  const hmac = await new SignJWT({ id: runId }).setProtectedHeader({ alg: 'HS256' }).setIssuer('Lightning').setExpirationTime(now + 600).sign(new TextEncoder().encode(TEST_SECRET));
  for (const token of [forged, hmac, claimed.token.slice(0, -4) + 'AAAA']) {
    t.deepEqual((await join(socket, `run:${runId}`, { token })).response, { reason: 'unauthorized' });
  }
  t.deepEqual((await join(socket, `run:${runId}`, {})).response, { reason: 'unauthorized' });
  t.is((await join(socket, `run:${runId}`, { token: claimed.token })).status, 'ok');
});

test('a run token opens its run only until it expires', async (t) => {
  // Token expiry = claim + run timeout + grace; the heartbeat lease keeps the run itself in flight meanwhile.
  // The timeout leaves the claim, join and first heartbeat room on a loaded machine (PostgreSQL is slower);
  // expiry is then about 3 s + 1 s (whole seconds) + the 5 s clock tolerance.
  // Signed at its claim: a token made ahead in idle time (run-token-pool.ts) is valid up to its pool age longer, and
  // whether the pool has refilled before the submit depends on the machine's load.
  const server = await startServer(t, { graceMs: 0, leaseMs: 60_000, presignedTokens: 0 });
  const { runId, claimed, run } = await claimedRun(t, server, { plan: { jobs: [{ id: 'j', body: 'x', adaptor: 'a' }], options: { run_timeout_ms: 3_000 } } });
  t.is((await push(run, 'run:heartbeat', { timestamp: ts() })).status, 'ok');
  // Rejoin from a second connection of the same worker (a reconnect) until the token is refused.
  const reconnect = await connectWorker(t, server);
  const refusedAt = await waitFor(
    async () => {
      const attempt = await join(reconnect, `run:${runId}`, { token: claimed.token });
      if (attempt.status === 'ok') {
        attempt.channel.leave();
        return undefined;
      }
      t.deepEqual(attempt.response, { reason: 'unauthorized' });
      return Date.now();
    },
    { timeoutMs: 30_000, intervalMs: 200, message: 'the run token to expire' },
  );
  t.true(refusedAt > 0);
  // The run itself is still in flight: only the token expired.
  t.is((await api(server, 'GET', `/api/runs/${runId}`)).body['state'], 'claimed');
});

test('credential values never reach the server logs, and are scrubbed from stored log lines', async (t) => {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(chunk.toString('utf8'));
      done();
    },
  });
  const server = await startServer(t, { logger: pino({ level: 'trace' }, sink) });
  const password = 'hunter2-correct-horse';
  const apiKey = 'sk-live-0123456789';
  const basic = Buffer.from(`admin:${password}`).toString('base64');
  t.is((await api(server, 'PUT', '/api/credentials/cred-1', { username: 'admin', password, nested: { api_key: apiKey } })).status, 200);
  const plan = {
    jobs: [{ id: 'job-1', body: 'fn(s => s)', adaptor: '@openfn/language-common@latest', credential_id: 'cred-1' }],
  };
  const { runId, run } = await claimedRun(t, server, { plan });
  t.is((await push(run, 'run:log', { run_id: runId, message: [`before the fetch: ${apiKey}`], level: 'info', source: 'R/T', timestamp: ts() })).status, 'ok');
  const fetched = await push(run, 'fetch:credential', { id: 'cred-1' });
  t.deepEqual(fetched.response, { username: 'admin', password, nested: { api_key: apiKey } });
  t.is((await push(run, 'run:start', { timestamp: ts() })).status, 'ok');
  t.is((await push(run, 'step:start', { step_id: 's1', job_id: 'job-1', timestamp: ts() })).status, 'ok');
  t.is(
    (await push(run, 'run:log', {
      run_id: runId,
      message: [`connecting with ${password}`, { configuration: { password, api_key: apiKey }, [password]: 'as a key' }, `Authorization: Basic ${basic}`],
      level: 'info',
      source: 'JOB',
      step_id: 's1',
      timestamp: ts(),
    })).status,
    'ok',
  );
  t.is(
    (await push(run, 'run:batch_logs', { run_id: runId, logs: [{ message: [`${apiKey}${apiKey}`], level: 'debug', source: 'JOB', step_id: 's1', timestamp: ts() }] })).status,
    'ok',
  );
  t.is((await push(run, 'step:complete', { step_id: 's1', job_id: 'job-1', reason: 'fail', error_type: 'Error', error_message: 'bad auth', timestamp: ts() })).status, 'ok');
  t.is((await push(run, 'run:complete', { reason: 'fail', error_type: 'Error', error_message: 'bad auth', timestamp: ts() })).status, 'ok');

  const logs = await api<{ logs: Array<{ message: unknown[] }> }>(server, 'GET', `/api/runs/${runId}/logs`);
  t.deepEqual(logs.body.logs.map((line) => line.message), [
    ['before the fetch: [REDACTED]'],
    ['connecting with [REDACTED]', { configuration: { password: '[REDACTED]', api_key: '[REDACTED]' }, '[REDACTED]': 'as a key' }, 'Authorization: Basic [REDACTED]'],
    ['[REDACTED][REDACTED]'],
  ]);
  // A finished run's credentials are no longer handed out.
  t.deepEqual(await push(run, 'fetch:credential', { id: 'cred-1' }), { status: 'error', response: { state: ['already in completed state'] } });
  t.true(lines.length > 5, 'the server logged at trace level');
  const logged = lines.join('\n');
  for (const secret of [password, apiKey, basic]) t.false(logged.includes(secret), `the server's logs hold ${secret}`);
});

test('a cancelled run is refused on its next heartbeat, even before it started, and its credentials are closed', async (t) => {
  const server = await startServer(t);
  t.is((await api(server, 'PUT', '/api/credentials/c', { k: 'v' })).status, 200);
  const { runId, run } = await claimedRun(t, server, { plan: { jobs: [{ id: 'j', body: 'x', adaptor: 'a', credential_id: 'c' }] } });
  t.deepEqual(await push(run, 'run:heartbeat', { timestamp: ts() }), { status: 'ok', response: {} });
  t.is((await api(server, 'POST', `/api/runs/${runId}/cancel`)).status, 200);
  const cancelled = { status: 'error', response: { state: ['already in completed state'] } };
  t.deepEqual(await push(run, 'run:heartbeat', { timestamp: ts() }), cancelled);
  t.deepEqual(await push(run, 'fetch:credential', { id: 'c' }), cancelled);
  t.deepEqual(await push(run, 'run:start', { timestamp: ts() }), cancelled);
  t.is((await api(server, 'GET', `/api/runs/${runId}`)).body['state'], 'cancelled');
});
