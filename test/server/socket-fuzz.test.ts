/**
 * Throws random frames at a real server over a real `ws` connection for a
 * bounded time: random JSON arrays, random strings, random binary, and
 * valid-looking frames with random events and payloads on joined topics (the
 * worker's queue, its run in flight, runs that have finished) and on topics
 * it never joined. Then checks that every frame with a ref was answered, that
 * nothing failed inside the server, that no finished run changed and every
 * run is in a valid state, and that a fresh worker is served end to end.
 */
import { Writable } from 'node:stream';
import test from 'ava';
import fc from 'fast-check';
import pino from 'pino';
import { RUN_STATES, isTerminalState } from '../../src/protocol/index.ts';
import type { RunState } from '../../src/protocol/index.ts';
import { api, claim, completeRunHappily, connectWorker, joinQueue, joinRun, startServer, submitRun, waitFor } from './helpers.ts';
import { binaryPush, connectRaw } from './raw-socket.ts';

/** Wall-clock budget of the property; the whole test stays well under 15 s. */
const FUZZ_TIME_LIMIT_MS = 6_000;

const RUN_EVENTS = ['fetch:plan', 'fetch:dataclip', 'fetch:credential', 'run:start', 'step:start', 'run:log', 'run:batch_logs', 'step:complete', 'run:complete', 'run:heartbeat'];

/** The ref the server must answer for a text frame, by the protocol's rule: a JSON array whose second element is a string or finite number. */
function expectedRef(text: string): string | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (!Array.isArray(parsed)) return undefined;
  const ref: unknown = parsed[1];
  if (typeof ref === 'string') return ref;
  if (typeof ref === 'number' && Number.isFinite(ref)) return String(ref);
  return undefined;
}

/** The ref of a binary frame the server reads as a push (kind 0, lengths that fit, a non-empty ref). */
function expectedBinaryRef(bytes: Uint8Array): string | undefined {
  if (bytes.length < 5 || bytes[0] !== 0) return undefined;
  const sizes = [bytes[1] ?? 0, bytes[2] ?? 0, bytes[3] ?? 0, bytes[4] ?? 0];
  if (bytes.length < 5 + sizes.reduce((a, b) => a + b, 0)) return undefined;
  const refSize = sizes[1] ?? 0;
  if (refSize === 0) return undefined;
  const start = 5 + (sizes[0] ?? 0);
  return Buffer.from(bytes.subarray(start, start + refSize)).toString('utf8');
}

type FuzzFrame =
  | { kind: 'frame'; joinRef: string | null; topic: string; event: string; payload: unknown }
  | { kind: 'text'; text: string }
  | { kind: 'binary'; bytes: Uint8Array }
  | { kind: 'binary-push'; topic: string; event: string; bytes: Uint8Array };

test('random frames at the socket: every ref answered, nothing broken, the server keeps serving', async (t) => {
  const logLines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      logLines.push(chunk.toString('utf8'));
      done();
    },
  });
  const server = await startServer(t, { logger: pino({ level: 'warn' }, sink), maxFrameBytes: 64 * 1024 });
  t.is((await api(server, 'PUT', '/api/credentials/cred-1', { password: 'p4ssw0rd' })).status, 200);
  const credentialPlan = { jobs: [{ id: 'job-1', body: 'fn(s => s)', adaptor: '@openfn/language-common@latest', credential_id: 'cred-1' }] };

  // Setup as the worker "fuzzer": two finished runs, a cancelled one, one in flight, a few waiting.
  const setup = await connectWorker(t, server, { workerId: 'fuzzer' });
  const { channel: setupQueue } = await joinQueue(setup);
  const finished: string[] = [];
  const tokens = new Map<string, string>();
  for (let index = 0; index < 2; index += 1) {
    const id = await submitRun(server, { queue: 'done_q', plan: credentialPlan });
    const [claimed] = await claim(setupQueue, ['done_q']);
    if (!claimed) return t.fail();
    tokens.set(id, claimed.token);
    await completeRunHappily(await joinRun(setup, claimed), id);
    finished.push(id);
  }
  const cancelledId = await submitRun(server, { queue: 'done_q' });
  const [cancelledClaim] = await claim(setupQueue, ['done_q']);
  if (!cancelledClaim) return t.fail();
  tokens.set(cancelledId, cancelledClaim.token);
  t.is((await api(server, 'POST', `/api/runs/${cancelledId}/cancel`)).status, 200);
  finished.push(cancelledId);
  const targetId = await submitRun(server, { queue: 'target_q', plan: credentialPlan });
  const [targetClaim] = await claim(setupQueue, ['target_q']);
  if (!targetClaim) return t.fail();
  tokens.set(targetId, targetClaim.token);
  const waiting = [await submitRun(server, { queue: 'manual' }), await submitRun(server, { queue: 'fast_lane' }), await submitRun(server)];

  const snapshot = async (id: string) => ({
    run: (await api(server, 'GET', `/api/runs/${id}`)).body,
    logs: (await api(server, 'GET', `/api/runs/${id}/logs`)).body,
  });
  const before = await Promise.all(finished.map(snapshot));

  // The fuzzing connection joins the queue and every run above with their tokens.
  const raw = await connectRaw(t, server, 'fuzzer');
  raw.send(['q', 'join-q', 'worker:queue', 'phx_join', { capacity: 4, queues: { 'manual>*': 4 } }]);
  t.is((await raw.reply('join-q')).status, 'ok');
  const joined = ['worker:queue'];
  for (const [id, token] of tokens) {
    raw.send([`j-${id}`, `join-${id}`, `run:${id}`, 'phx_join', { token }]);
    t.is((await raw.reply(`join-${id}`)).status, 'ok', `join run ${id}`);
    joined.push(`run:${id}`);
  }
  const unjoined = ['run:nope', `run:${waiting[0] ?? 'x'}`, 'room:lobby', 'phoenix', 'worker:queue:extra', 'run:'];

  const plausible = fc.constantFrom<unknown>(
    'job-1', 's1', `step-${finished[0]}`, `out-${finished[0]}`, 'success', 'fail', 'crash', 'kill', 'cancel', 'exception', 'info', 'JOB', 'R/T',
    targetId, finished[0], 'cred-1', 'nope', '{"data":{}}', 'not json', null, true, 1, 0, -1, 1.5, 1000, '', '1700000000000000', 'manual', '*', 'fast_lane',
    ['manual', '*'], ['*'], ['*', 'manual'], ['bad name'], [], { job: 1, system: 2 }, { status: 201, body: {} }, { status: 42 },
  );
  const value = fc.oneof({ weight: 3, arbitrary: plausible }, { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 2 }) });
  const logLine = fc.record({ message: fc.oneof(fc.array(fc.string(), { maxLength: 3 }), value), level: value, source: value, step_id: value, log_id: value, timestamp: value }, { requiredKeys: [] });
  const payload = fc.oneof(
    { weight: 4, arbitrary: fc.record({
      demand: value, queues: value, worker_name: value, capacity: value, token: value, id: value,
      step_id: value, job_id: value, input_dataclip_id: value, reason: value, error_type: value, error_message: value,
      output_dataclip: value, output_dataclip_id: value, output_dataclip_error: value, mem: value, duration: value, thread_id: value,
      webhook_response: value, final_state: value, final_dataclip_id: value, versions: value, timestamp: value,
      run_id: value, message: value, level: value, source: value, log_id: value, logs: fc.oneof(fc.array(logLine, { maxLength: 3 }), value),
    }, { requiredKeys: [] }) },
    { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
  );
  const joinedEvent = fc.oneof(fc.constantFrom('claim', ...RUN_EVENTS), fc.string({ maxLength: 12 }));
  const anyEvent = fc.oneof(fc.constantFrom('phx_join', 'phx_leave', 'heartbeat', 'claim', ...RUN_EVENTS), fc.string({ maxLength: 12 }));
  const refLike = fc.oneof(fc.constant(null), fc.string({ maxLength: 6 }), fc.integer());
  const frame: fc.Arbitrary<FuzzFrame> = fc.oneof(
    { weight: 5, arbitrary: fc.record({ kind: fc.constant('frame' as const), joinRef: fc.option(fc.string({ maxLength: 4 })), topic: fc.constantFrom(...joined), event: joinedEvent, payload }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('frame' as const), joinRef: fc.option(fc.string({ maxLength: 4 })), topic: fc.oneof(fc.constantFrom(...unjoined), fc.string({ maxLength: 10 })), event: anyEvent, payload }) },
    { weight: 2, arbitrary: fc.tuple(refLike, refLike, fc.jsonValue({ maxDepth: 1 }), fc.jsonValue({ maxDepth: 1 }), fc.jsonValue({ maxDepth: 2 })).chain((five) =>
      fc.integer({ min: 0, max: 7 }).map((length) => ({ kind: 'text' as const, text: JSON.stringify(Array.from({ length }, (_, i) => five[i % 5])) }))) },
    { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 3 }).map((json) => ({ kind: 'text' as const, text: JSON.stringify(json) })) },
    { weight: 1, arbitrary: fc.string({ maxLength: 40 }).map((text) => ({ kind: 'text' as const, text })) },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 48 }).map((bytes) => ({ kind: 'binary' as const, bytes })) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('binary-push' as const), topic: fc.constantFrom(...joined, 'phoenix'), event: joinedEvent, bytes: fc.uint8Array({ maxLength: 32 }) }) },
  );

  let counter = 0;
  const expected = new Map<string, number>();
  const expect = (ref: string | undefined) => {
    if (ref !== undefined) expected.set(ref, (expected.get(ref) ?? 0) + 1);
  };
  const allAnswered = () => {
    const received = raw.repliesByRef();
    for (const [ref, count] of expected) if ((received.get(ref) ?? 0) < count) return false;
    return true;
  };
  let frames = 0;
  await fc.assert(
    fc.asyncProperty(fc.array(frame, { minLength: 1, maxLength: 20 }), async (batch) => {
      for (const item of batch) {
        frames += 1;
        if (item.kind === 'frame') {
          // Valid-looking frames carry a fresh ref each, so their replies are counted exactly.
          const ref = `fz${(counter += 1)}`;
          expect(ref);
          raw.send([item.joinRef, ref, item.topic, item.event, item.payload]);
        } else if (item.kind === 'binary-push') {
          const ref = `fz${(counter += 1)}`;
          expect(ref);
          raw.send(binaryPush('1', ref, item.topic, item.event.slice(0, 40), item.bytes));
        } else if (item.kind === 'binary') {
          expect(expectedBinaryRef(item.bytes));
          raw.ws.send(Buffer.from(item.bytes), { binary: true });
        } else {
          expect(expectedRef(item.text));
          raw.ws.send(item.text);
        }
      }
      await waitFor(allAnswered, { timeoutMs: 5_000, message: 'a reply to every frame with a ref' });
      return raw.ws.readyState === raw.ws.OPEN;
    }),
    { numRuns: 400, interruptAfterTimeLimit: FUZZ_TIME_LIMIT_MS, ...(process.env['FUZZ_SEED'] ? { seed: Number(process.env['FUZZ_SEED']) } : {}) },
  );
  const okReplies = raw.frames.filter((f) => f[3] === 'phx_reply' && (f[4] as { status?: string }).status === 'ok').length;
  t.log(`${frames} frames, ${expected.size} distinct refs answered, ${okReplies} ok replies`);
  t.true(frames > 100, 'the fuzzer sent a meaningful number of frames');
  t.is(raw.ws.readyState, raw.ws.OPEN, 'the fuzzing connection is still open');

  // Nothing failed inside the server: no internal-error replies, no error-level log line.
  const internal = raw.frames.filter((f) => f[3] === 'phx_reply' && JSON.stringify(f[4]).includes('internal error'));
  t.deepEqual(internal, []);
  const errors = logLines.map((line) => JSON.parse(line) as { level: number; msg: string }).filter((line) => line.level >= 50);
  t.deepEqual(errors, []);

  // Finished runs did not change; every run is in a valid, consistent state.
  t.deepEqual(await Promise.all(finished.map(snapshot)), before);
  const listed = await api<{ runs: Array<Record<string, unknown>> }>(server, 'GET', '/api/runs?limit=1000');
  for (const run of listed.body.runs) {
    const state = run['state'] as RunState;
    t.true((RUN_STATES as readonly string[]).includes(state), `run ${String(run['id'])} state ${state}`);
    if (isTerminalState(state)) t.truthy(run['finished_at'], `finished run ${String(run['id'])} has finished_at`);
    if (state === 'claimed' || state === 'started') t.truthy(run['worker'], `run ${String(run['id'])} in flight has a worker`);
    if (state === 'started') t.truthy(run['started_at']);
  }

  // A fresh worker is served end to end.
  raw.ws.close();
  const fresh = await connectWorker(t, server, { workerId: 'fresh' });
  const { channel: queue } = await joinQueue(fresh, { fresh_q: 1 });
  const freshId = await submitRun(server, { queue: 'fresh_q' });
  const [freshClaim] = await claim(queue, ['fresh_q']);
  t.is(freshClaim?.id, freshId);
  if (!freshClaim) return;
  await completeRunHappily(await joinRun(fresh, freshClaim), freshId);
  t.is((await api(server, 'GET', `/api/runs/${freshId}`)).body['state'], 'success');
});
