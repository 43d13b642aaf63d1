/**
 * What job code can and cannot reach (docs/reliability.md, "The sandbox"),
 * and that credential values never leave the worker in its own logs or in
 * the job log lines it sends to the server.
 *
 * Forged run tokens are covered elsewhere and not repeated here:
 * test/worker/lanes.test.ts ("a worker with the wrong public key refuses the
 * run without executing it") and test/protocol/tokens.test.ts (forged,
 * expired and foreign tokens are refused by `verifyRunToken`).
 */
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { writeFile } from 'node:fs/promises';
import { createServer, connect } from 'node:net';
import type { AddressInfo, Socket as NetSocket } from 'node:net';
import path from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { FIXTURE_DIR, job, plan, request, startEngine, stepCompletes, tempDir } from '../engine/helpers.ts';
import { api, startServer, submitRun, waitFor } from '../server/helpers.ts';
import { startWorker, testConfig } from '../worker/helpers.ts';

const SECRET = 'worker-secret-7f3a9c';

/** Job code that escapes the vm context the classic way and reports what each attempt got. */
const ESCAPE_PROBES = `
fn(async (state) => {
  const out = { typeofProcess: typeof process, typeofRequire: typeof require, typeofGlobalProcess: typeof globalThis.process };
  const attempt = async (name, f) => {
    try { out[name] = { ok: await f() }; } catch (e) { out[name] = { error: String(e && e.name) + ': ' + String(e && e.message).slice(0, 200) }; }
  };
  // The vm context has no process, but any object from outside it leads to the thread's own Function.
  const P = state.constructor.constructor('return process')();
  out.escaped = typeof P;
  out.envSecret = P.env.WORKER_SECRET ?? null;
  out.envNames = Object.keys(P.env).filter((n) => /^(WORKER|LANES)_/.test(n));
  out.send = typeof P.send;
  out.channel = typeof P.channel;
  await attempt('dynamicImport', async () => typeof (await import('node:child_process')).execSync);
  await attempt('childProcess', () => P.getBuiltinModule('child_process').execSync('echo pwned').toString());
  await attempt('spawnSync', () => P.getBuiltinModule('child_process').spawnSync('echo', ['pwned']).stdout?.toString());
  await attempt('parentEnviron', () => P.getBuiltinModule('fs').readFileSync('/proc/' + P.ppid + '/environ', 'utf8').length);
  await attempt('selfEnviron', () => P.getBuiltinModule('fs').readFileSync('/proc/self/environ', 'utf8'));
  await attempt('secretFile', () => P.getBuiltinModule('fs').readFileSync(state.data.secretFile, 'utf8'));
  await attempt('writeFile', () => { P.getBuiltinModule('fs').writeFileSync(state.data.secretFile + '.w', 'x'); return 'written'; });
  await attempt('binding', () => typeof P.binding('spawn_sync'));
  await attempt('kill', () => P.kill(P.ppid, 0));
  await attempt('setPriority', () => P.getBuiltinModule('os').setPriority(-5));
  await attempt('threadWithoutFlags', () => typeof new (P.getBuiltinModule('worker_threads').Worker)('1', { eval: true, execArgv: [] }));
  await attempt('inspector', () => typeof P.getBuiltinModule('inspector').open());
  return { ...state, out };
});
`;

type Attempt = { ok: unknown } | { error: string };

test('job code sees no process; escaping the vm finds no secret, no parent channel, no child processes and no files', async (t) => {
  const dir = await tempDir(t, 'lanes-secret-');
  const secretFile = path.join(dir, 'secret.txt');
  await writeFile(secretFile, SECRET);
  const engine = await startEngine(t, {
    // The worker's environment carries its secret; listing it must not pass it on.
    env: { ...process.env, WORKER_SECRET: SECRET, LANES_RUNS_PRIVATE_KEY: SECRET },
    envAllowList: ['PATH', 'HOME', 'WORKER_SECRET', 'LANES_RUNS_PRIVATE_KEY'],
  });
  const { request: req, events } = request(plan([job('probe', ESCAPE_PROBES)]), { input: { data: { secretFile } } });
  const outcome = await engine.execute(req);
  t.is(outcome.reason, 'success', JSON.stringify(outcome));
  const step = stepCompletes(events)[0];
  const out = (JSON.parse(step?.outputJson ?? '{}') as { out: Record<string, unknown> }).out;
  t.log(JSON.stringify(out, null, 1));

  t.is(out['typeofProcess'], 'undefined', 'job code has no process');
  t.is(out['typeofRequire'], 'undefined');
  t.is(out['typeofGlobalProcess'], 'undefined');
  t.is(out['escaped'], 'object', 'the vm context is escapable: the tests below are what holds');
  t.is(out['envSecret'], null, 'WORKER_SECRET is not in the child environment, even when allow-listed');
  t.deepEqual(out['envNames'], []);
  t.is(out['send'], 'undefined', 'no IPC channel to the worker from the run thread');
  t.is(out['channel'], 'undefined');
  const refused = (name: string, pattern: RegExp): void => {
    const attempt = out[name] as Attempt | undefined;
    t.truthy(attempt && 'error' in attempt, `${name} should fail, got ${JSON.stringify(attempt)}`);
    if (attempt && 'error' in attempt) t.regex(attempt.error, pattern, name);
  };
  refused('dynamicImport', /dynamic import callback/i);
  refused('childProcess', /ERR_ACCESS_DENIED|Access to this API has been restricted/);
  refused('spawnSync', /ERR_ACCESS_DENIED|Access to this API has been restricted/);
  refused('parentEnviron', /ERR_ACCESS_DENIED|Access to this API has been restricted/);
  refused('selfEnviron', /ERR_ACCESS_DENIED|Access to this API has been restricted/);
  refused('secretFile', /ERR_ACCESS_DENIED|Access to this API has been restricted/);
  refused('writeFile', /ERR_ACCESS_DENIED|Access to this API has been restricted/);
  refused('binding', /ERR_ACCESS_DENIED|process\.binding/);
  refused('kill', /SandboxError/);
  refused('setPriority', /SandboxError/);
  refused('threadWithoutFlags', /SandboxError/);
  refused('inspector', /ERR_ACCESS_DENIED|restricted|inspector/i);
  t.false(JSON.stringify(events).includes(SECRET), 'the secret appears in no event');
  t.false(JSON.stringify(events).includes('pwned'), 'no command ran');
});

test('a static import of child_process in job code does not run', async (t) => {
  const engine = await startEngine(t);
  const body = "import { execSync } from 'node:child_process';\nfn((state) => ({ ...state, out: execSync('echo pwned').toString() }));";
  const { request: req, events } = request(plan([job('probe', body)]));
  const outcome = await engine.execute(req);
  t.not(outcome.reason, 'success');
  t.false(JSON.stringify(events).includes('pwned'));
});

/**
 * A TCP proxy between the worker and the server that decodes the client's
 * (masked) WebSocket frames, so the test sees exactly what the worker sent.
 */
async function framingProxy(t: ExecutionContext, targetPort: number): Promise<{ port: number; sent: string[] }> {
  const sent: string[] = [];
  const sockets = new Set<NetSocket>();
  const server = createServer((client) => {
    const upstream = connect(targetPort, '127.0.0.1');
    sockets.add(client).add(upstream);
    let buffer = Buffer.alloc(0);
    let upgraded = false;
    client.on('data', (chunk: Buffer) => {
      upstream.write(chunk);
      buffer = Buffer.concat([buffer, chunk]);
      if (!upgraded) {
        const end = buffer.indexOf('\r\n\r\n');
        if (end < 0) return;
        upgraded = true;
        buffer = buffer.subarray(end + 4);
      }
      for (;;) {
        if (buffer.length < 2) return;
        const second = buffer[1] as number;
        let length = second & 0x7f;
        let offset = 2;
        if (length === 126) {
          if (buffer.length < 4) return;
          length = buffer.readUInt16BE(2);
          offset = 4;
        } else if (length === 127) {
          if (buffer.length < 10) return;
          length = Number(buffer.readBigUInt64BE(2));
          offset = 10;
        }
        const masked = (second & 0x80) !== 0;
        const total = offset + (masked ? 4 : 0) + length;
        if (buffer.length < total) return;
        const payload = Buffer.from(buffer.subarray(total - length, total));
        if (masked) {
          const key = buffer.subarray(offset, offset + 4);
          for (let i = 0; i < payload.length; i++) payload[i] = (payload[i] as number) ^ (key[i % 4] as number);
        }
        sent.push(payload.toString('utf8'));
        buffer = buffer.subarray(total);
      }
    });
    upstream.on('data', (chunk: Buffer) => client.write(chunk));
    const end = (): void => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  t.teardown(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return { port: (server.address() as AddressInfo).port, sent };
}

test('credential values never reach the worker log, and are [REDACTED] in job log lines on the wire', async (t) => {
  const server = await startServer(t);
  const proxy = await framingProxy(t, new URL(server.url).port ? Number(new URL(server.url).port) : 80);
  const password = 'hunter2-p4ssw0rd-xyz';
  const apiKey = 'key-9d8c7b6a5f';
  const credential = { username: 'alice', password, nested: { apiKey }, port: 443 };
  t.is((await api(server, 'PUT', '/api/credentials/cred-1', credential)).status < 300, true);

  let workerLog = '';
  const logger = pino({ level: 'trace' }, new Writable({ write: (chunk: Buffer, _enc, done) => ((workerLog += chunk.toString('utf8')), done()) }));
  const repoDir = await tempDir(t, 'lanes-security-repo-');
  await startWorker(t, {
    logger,
    config: testConfig({ lightningUrl: `ws://127.0.0.1:${proxy.port}/worker`, workloopsText: 'manual>*:1', repoDir, logLevel: 'trace' }),
    engine: { localAdaptors: { '@openfn/language-lanesfixture': FIXTURE_DIR }, repoDir },
  });
  const body = [
    'fn((state) => {',
    '  console.log(state.configuration);',
    '  console.log("the password is " + state.configuration.password + "!");',
    '  console.log({ header: "Basic " + Buffer.from("alice:" + state.configuration.password).toString("base64") });',
    '  console.log("key", state.configuration.nested.apiKey, "port", state.configuration.port);',
    '  return { data: { ok: true } };',
    '});',
  ].join('\n');
  const id = await submitRun(server, {
    plan: {
      triggers: [{ id: 'trigger', type: 'webhook' }],
      jobs: [{ id: 'job-1', body, adaptor: '@openfn/language-lanesfixture@1.0.0', credential_id: 'cred-1' }],
      edges: [{ id: 'e', source_trigger_id: 'trigger', target_job_id: 'job-1', condition: 'always' }],
    },
  });
  const run = await waitFor(
    async () => {
      const view = (await api<{ state: string }>(server, 'GET', `/api/runs/${id}`)).body;
      return ['success', 'failed', 'crashed', 'killed', 'exception', 'lost'].includes(view.state) ? view : null;
    },
    { timeoutMs: 30_000, message: 'the run to finish' },
  );
  t.is(run.state, 'success');

  const logFrames = proxy.sent.filter((frame) => frame.includes('"run:log"') || frame.includes('"run:batch_logs"'));
  t.true(logFrames.length >= 4, `saw ${logFrames.length} log frames`);
  const wire = proxy.sent.join('\n');
  for (const value of [password, apiKey, Buffer.from(`alice:${password}`).toString('base64')]) {
    t.false(wire.includes(value), `the worker sent ${value} to the server`);
    t.false(workerLog.includes(value), `the worker logged ${value}`);
  }
  t.true(logFrames.some((frame) => frame.includes(`the password is [REDACTED]!`)), 'the line is kept, the value redacted');
  t.true(logFrames.some((frame) => frame.includes('Basic [REDACTED]')), 'a Basic auth header made of the credential is redacted');
  t.true(logFrames.some((frame) => frame.includes('"port",443')), 'numbers are not redacted');
  t.true(workerLog.length > 0, 'the worker did log (at trace)');
});
