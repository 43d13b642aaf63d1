/**
 * Test helpers for anything that needs a real Lanes server: start one on
 * port 0 over an in-memory (or file) database, connect the real `phoenix`
 * client as a worker, join channels, push events and await replies, submit
 * runs over the JSON API, and poll a condition with a deadline.
 *
 * Every helper that creates something registers its teardown with AVA's
 * `t.teardown`, so a test never leaves a server or socket behind.
 */
import type { ExecutionContext } from 'ava';
import { Socket } from 'phoenix';
import type { Channel } from 'phoenix';
import pino from 'pino';
import type { Logger } from 'pino';
import WebSocket from 'ws';
import { API_VERSION, WORKER_QUEUE_TOPIC, runTopic, signWorkerToken } from '../../src/protocol/index.ts';
import type { ClaimReply, ClaimedRun, QueueJoinReply } from '../../src/protocol/index.ts';
import { LanesServer } from '../../src/server/index.ts';
import type { ServerOptions } from '../../src/server/index.ts';
import { postgresDatabase } from './store-harness.ts';

export const TEST_SECRET = 'test-secret';
/** The API token every test server accepts, and `api()` sends. */
export const TEST_API_TOKEN = 'test-api-token-0123456789';

/** A logger that prints nothing; set LANES_TEST_LOG=debug to see the server's logs. */
export function testLogger(): Logger {
  return pino({ level: process.env['LANES_TEST_LOG'] ?? 'silent' });
}

export type TestServerOptions = Partial<ServerOptions>;

/**
 * Which store `startServer` gives a server that names no `dbPath`: SQLite in
 * memory, or, with LANES_TEST_STORE=postgres (set by
 * postgres-conformance.test.ts), a fresh database on a real PostgreSQL.
 */
export function testStoreKind(): 'sqlite' | 'postgres' {
  return process.env['LANES_TEST_STORE'] === 'postgres' ? 'postgres' : 'sqlite';
}

/** Starts a server on port 0 with fast sweeps; stopped at teardown. */
export async function startServer(t: ExecutionContext, overrides: TestServerOptions = {}): Promise<LanesServer> {
  const server = await LanesServer.create({
    port: 0,
    dbPath: testStoreKind() === 'postgres' && overrides.dbPath === undefined ? await postgresDatabase() : ':memory:',
    secret: TEST_SECRET,
    apiTokens: [TEST_API_TOKEN],
    logger: testLogger(),
    sweepIntervalMs: 50,
    ...overrides,
  });
  t.teardown(() => server.stop());
  await server.start();
  return server;
}

export interface ConnectOptions {
  workerId?: string;
  secret?: string;
  /** Overrides the token entirely (e.g. to test refusal). */
  token?: string;
  timeoutMs?: number;
}

/** Connects the phoenix client to the server's worker endpoint; resolves once open, rejects on error. Disconnected at teardown. */
export async function connectWorker(t: ExecutionContext, server: LanesServer, options: ConnectOptions = {}): Promise<Socket> {
  const token = options.token ?? (await signWorkerToken(options.secret ?? TEST_SECRET, options.workerId ?? 'worker-1'));
  const socket = new Socket(server.workerUrl, {
    transport: WebSocket,
    params: { token, api_version: API_VERSION, worker_version: 'test' },
    timeout: options.timeoutMs ?? 5_000,
    // Tests never want a silent reconnect loop.
    reconnectAfterMs: () => 60_000,
    heartbeatIntervalMs: 30_000,
  });
  t.teardown(() => disconnect(socket));
  await new Promise<void>((resolve, reject) => {
    const openRef = socket.onOpen(() => {
      socket.off([openRef, errorRef]);
      resolve();
    });
    const errorRef = socket.onError((error: unknown) => {
      socket.off([openRef, errorRef]);
      socket.disconnect();
      reject(new Error(`socket error: ${String(error)}`));
    });
    socket.connect();
  });
  return socket;
}

/** Disconnects and resolves once the socket closed. */
export function disconnect(socket: Socket): Promise<void> {
  return new Promise((resolve) => {
    if (!socket.isConnected()) {
      socket.disconnect();
      resolve();
      return;
    }
    socket.disconnect(() => resolve(), 1000, 'test done');
  });
}

export interface PushResult<T = unknown> {
  status: 'ok' | 'error' | 'timeout';
  response: T;
}

/** Joins a topic; resolves with the join's status and response. */
export function join<T = unknown>(socket: Socket, topic: string, payload: object = {}): Promise<{ channel: Channel } & PushResult<T>> {
  const channel = socket.channel(topic, payload);
  return new Promise((resolve) => {
    channel
      .join()
      .receive('ok', (response: T) => resolve({ channel, status: 'ok', response }))
      .receive('error', (response: T) => {
        channel.leave();
        resolve({ channel, status: 'error', response });
      })
      .receive('timeout', () => resolve({ channel, status: 'timeout', response: undefined as T }));
  });
}

/** Pushes an event and resolves with the reply (ok, error or timeout); never rejects. */
export function push<T = unknown>(channel: Channel, event: string, payload: object = {}, timeoutMs?: number): Promise<PushResult<T>> {
  return new Promise((resolve) => {
    channel
      .push(event, payload, timeoutMs)
      .receive('ok', (response: T) => resolve({ status: 'ok', response }))
      .receive('error', (response: T) => resolve({ status: 'error', response }))
      .receive('timeout', () => resolve({ status: 'timeout', response: undefined as T }));
  });
}

/** Joins `worker:queue` with a capacity and lanes; throws unless the join succeeds. */
export async function joinQueue(socket: Socket, lanes: Record<string, number> = { 'manual>*': 5 }): Promise<{ channel: Channel; reply: QueueJoinReply }> {
  const capacity = Object.values(lanes).reduce((sum, slots) => sum + slots, 0);
  const result = await join<QueueJoinReply>(socket, WORKER_QUEUE_TOPIC, { capacity, queues: lanes });
  if (result.status !== 'ok') throw new Error(`worker:queue join failed: ${JSON.stringify(result.response)}`);
  return { channel: result.channel, reply: result.response };
}

/** Claims for one lane; throws unless the claim is answered ok. */
export async function claim(channel: Channel, queues: string[] | undefined, demand = 1, workerName: string | null = 'test-worker'): Promise<ClaimedRun[]> {
  const payload: Record<string, unknown> = { demand, worker_name: workerName };
  if (queues !== undefined) payload['queues'] = queues;
  const result = await push<ClaimReply>(channel, 'claim', payload);
  if (result.status !== 'ok') throw new Error(`claim failed: ${result.status} ${JSON.stringify(result.response)}`);
  return result.response.runs;
}

/** Joins `run:<id>` with the claimed run's token; throws unless it succeeds. */
export async function joinRun(socket: Socket, run: ClaimedRun): Promise<Channel> {
  const result = await join(socket, runTopic(run.id), { token: run.token });
  if (result.status !== 'ok') throw new Error(`run join failed: ${JSON.stringify(result.response)}`);
  return result.channel;
}

export interface ApiResult<T = unknown> {
  status: number;
  body: T;
}

/** Calls the JSON API with the test token (`headers` add to or replace the defaults); the body is parsed as JSON when it is JSON. */
export async function api<T = Record<string, unknown>>(server: LanesServer, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<ApiResult<T>> {
  const init: RequestInit = { method, headers: { 'content-type': 'application/json', authorization: `Bearer ${TEST_API_TOKEN}`, ...headers } };
  if (body !== undefined) init.body = typeof body === 'string' ? body : JSON.stringify(body);
  const response = await fetch(`${server.url}${path}`, init);
  const text = await response.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // Not JSON (metrics): keep the text.
  }
  return { status: response.status, body: parsed as T };
}

/** A one-job plan for `POST /api/runs`. */
export function simplePlan(body = 'fn(state => state)', adaptor = '@openfn/language-common@latest'): Record<string, unknown> {
  return {
    triggers: [{ id: 'trigger', type: 'webhook' }],
    jobs: [{ id: 'job-1', name: 'job one', body, adaptor }],
    edges: [{ id: 'edge-1', source_trigger_id: 'trigger', target_job_id: 'job-1', condition: 'always' }],
  };
}

export interface SubmitOptions {
  queue?: string;
  priority?: number;
  input?: Record<string, unknown>;
  idempotency_key?: string;
  max_attempts?: number;
  plan?: Record<string, unknown>;
}

/** Submits a run and returns its id; throws unless the API answered 201. */
export async function submitRun(server: LanesServer, options: SubmitOptions = {}): Promise<string> {
  const { plan, ...rest } = options;
  const result = await api<{ id: string }>(server, 'POST', '/api/runs', { plan: plan ?? simplePlan(), ...rest });
  if (result.status !== 201) throw new Error(`submit failed: ${result.status} ${JSON.stringify(result.body)}`);
  return result.body.id;
}

/** Polls `condition` until it returns a truthy value or the deadline passes. */
export async function waitFor<T>(condition: () => T | Promise<T>, options: { timeoutMs?: number; intervalMs?: number; message?: string } = {}): Promise<NonNullable<T>> {
  const deadline = Date.now() + (options.timeoutMs ?? 5_000);
  for (;;) {
    const value = await condition();
    if (value) return value as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out waiting: ${options.message ?? 'condition'}`);
    await new Promise((resolve) => setTimeout(resolve, options.intervalMs ?? 10));
  }
}

/** Resolves with the payload of the next `event` pushed on `channel` (rejects after `timeoutMs`). */
export function nextPush<T = unknown>(channel: Channel, event: string, timeoutMs = 5_000): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      channel.off(event, ref);
      reject(new Error(`no ${event} within ${timeoutMs} ms`));
    }, timeoutMs);
    const ref = channel.on(event, (payload: T) => {
      clearTimeout(timer);
      channel.off(event, ref);
      resolve(payload);
    });
  });
}

/** The events of a successful one-step run, in order, with their replies. */
export async function completeRunHappily(channel: Channel, runId: string, jobId = 'job-1'): Promise<void> {
  const now = () => String(Date.now() * 1000);
  const expectOk = async (event: string, payload: object) => {
    const result = await push(channel, event, payload);
    if (result.status !== 'ok') throw new Error(`${event} failed: ${result.status} ${JSON.stringify(result.response)}`);
    return result.response;
  };
  await expectOk('run:start', { timestamp: now() });
  const stepId = `step-${runId}`;
  await expectOk('step:start', { step_id: stepId, job_id: jobId, timestamp: now() });
  await expectOk('step:complete', {
    step_id: stepId,
    job_id: jobId,
    reason: 'success',
    error_type: null,
    error_message: null,
    output_dataclip: '{"data":{}}',
    output_dataclip_id: `out-${runId}`,
    mem: { job: 1, system: 2 },
    duration: 3,
    timestamp: now(),
  });
  await expectOk('run:complete', { reason: 'success', error_type: null, error_message: null, final_dataclip_id: `out-${runId}`, timestamp: now() });
}

/**
 * The setup most run-channel tests share: a run submitted (with `submit`),
 * a worker connected to `worker:queue` that claimed it, and its run channel
 * joined with the run token.
 */
export async function claimedRun(t: ExecutionContext, server: LanesServer, submit: SubmitOptions = {}): Promise<{ runId: string; socket: Socket; queue: Channel; claimed: ClaimedRun; run: Channel }> {
  const runId = await submitRun(server, submit);
  const socket = await connectWorker(t, server);
  const { channel: queue } = await joinQueue(socket);
  const [claimed] = await claim(queue, ['*']);
  if (!claimed) throw new Error(`run ${runId} was not claimed`);
  return { runId, socket, queue, claimed, run: await joinRun(socket, claimed) };
}

/**
 * A dead letter: a run of `queue` claimed by a worker (lanes `manual>*:1`)
 * that reports it crashed on its only attempt. Returns the run's id and the
 * worker's `worker:queue` channel, to claim the run again after a retry.
 */
export async function deadLetterRun(t: ExecutionContext, server: LanesServer, queue = 'manual'): Promise<{ runId: string; queue: Channel }> {
  const socket = await connectWorker(t, server);
  const { channel } = await joinQueue(socket, { 'manual>*': 1 });
  const runId = await submitRun(server, { queue });
  const [claimed] = await claim(channel, ['manual', '*']);
  if (claimed?.id !== runId) throw new Error(`run ${runId} was not claimed`);
  const run = await joinRun(socket, claimed);
  await push(run, 'run:start', { timestamp: String(Date.now() * 1000) });
  const crashed = await push(run, 'run:complete', { reason: 'crash', error_type: 'ProcessCrash', error_message: 'the child died', timestamp: String(Date.now() * 1000) });
  if (crashed.status !== 'ok') throw new Error(`run:complete failed: ${JSON.stringify(crashed.response)}`);
  return { runId, queue: channel };
}
