/**
 * `work_queues`: a `work-available` push names the queues that got work, for
 * a worker that declared the extension; any other worker still gets `{}`.
 * Real server on port 0, real phoenix client.
 */
import test from 'ava';
import type { Channel, Socket } from 'phoenix';
import pino from 'pino';
import { CAPABILITY_WORK_QUEUES, MAX_WORK_QUEUES, WORK_AVAILABLE, WORKER_QUEUE_TOPIC } from '../../src/protocol/index.ts';
import type { QueueJoinReply, WorkAvailablePayload } from '../../src/protocol/index.ts';
import { WorkNotifier } from '../../src/server/work-notifier.ts';
import { WorkerRegistry } from '../../src/server/worker-registry.ts';
import type { ConnectedWorker } from '../../src/server/worker-registry.ts';
import { claim, connectWorker, join, nextPush, push, startServer, submitRun, waitFor } from './helpers.ts';

/** Joins `worker:queue` declaring `work_queues` (or not), and records every `work-available` payload. */
async function joinRecording(socket: Socket, lanes: Record<string, number>, namesQueues: boolean): Promise<{ channel: Channel; reply: QueueJoinReply; pushes: WorkAvailablePayload[] }> {
  const capacity = Object.values(lanes).reduce((sum, slots) => sum + slots, 0);
  const payload = { capacity, queues: lanes, ...(namesQueues ? { capabilities: [CAPABILITY_WORK_QUEUES] } : {}) };
  const result = await join<QueueJoinReply>(socket, WORKER_QUEUE_TOPIC, payload);
  if (result.status !== 'ok') throw new Error(`worker:queue join failed: ${JSON.stringify(result.response)}`);
  const pushes: WorkAvailablePayload[] = [];
  result.channel.on(WORK_AVAILABLE, (body: WorkAvailablePayload) => void pushes.push(body));
  return { channel: result.channel, reply: result.response, pushes };
}

const sorted = (payload: WorkAvailablePayload | undefined): string[] | undefined => (payload?.queues === undefined ? undefined : [...payload.queues].sort());

test('the push names its queue to a worker that declared work_queues; a worker that did not still gets {}', async (t) => {
  const server = await startServer(t);
  const naming = await joinRecording(await connectWorker(t, server, { workerId: 'naming' }), { fast_lane: 1, 'manual>*': 4 }, true);
  const plain = await joinRecording(await connectWorker(t, server, { workerId: 'plain' }), { fast_lane: 1, 'manual>*': 4 }, false);
  t.true(naming.reply.capabilities?.includes(CAPABILITY_WORK_QUEUES), 'the server offers the extension');
  await submitRun(server, { queue: 'manual' });
  await waitFor(() => naming.pushes.length === 1 && plain.pushes.length === 1, { message: 'a push to each worker' });
  t.deepEqual(naming.pushes[0], { queues: ['manual'] });
  t.deepEqual(plain.pushes[0], {});
});

test('a trailing push names every queue of its window, and a push that replaces a window carries the queues still pending in it', async (t) => {
  const windowMs = 1_500;
  const server = await startServer(t, { workAvailableDebounceMs: windowMs });
  const worker = await joinRecording(await connectWorker(t, server), { fast_lane: 1, 'manual>*': 4 }, true);
  const manual1 = await submitRun(server, { queue: 'manual' });
  await waitFor(() => worker.pushes.length === 1, { message: 'leading push' });
  t.deepEqual(worker.pushes[0], { queues: ['manual'] });
  // No claim in between: both wait for the window's end, and go in one push.
  await submitRun(server, { queue: 'fast_lane' });
  await submitRun(server, { queue: 'other' });
  await waitFor(() => worker.pushes.length === 2, { timeoutMs: windowMs + 20_000, message: 'trailing push' });
  t.deepEqual(sorted(worker.pushes[1]), ['fast_lane', 'other']);

  // The trailing push opened a window of its own: this run waits for its end too.
  const manual2 = await submitRun(server, { queue: 'manual' });
  await waitFor(() => worker.pushes.length === 3, { timeoutMs: windowMs + 20_000, message: 'third push' });
  t.deepEqual(worker.pushes[2], { queues: ['manual'] });
  const pending = await submitRun(server, { queue: 'fast_lane' });
  // A claim makes the next enqueue news: it is pushed at once, and the fast_lane run still pending in the window must be named with it.
  t.deepEqual((await claim(worker.channel, ['manual'], 5)).map((run) => run.id), [manual1, manual2]);
  await submitRun(server, { queue: 'other' });
  await waitFor(() => worker.pushes.length === 4, { message: 'push after the claim' });
  t.deepEqual(sorted(worker.pushes[3]), ['fast_lane', 'other']);
  t.true((await claim(worker.channel, ['fast_lane'], 5)).some((run) => run.id === pending), 'the pending run is there to claim');
});

test('with no coalescing window each push names its one queue, and the worker can still claim on the channel', async (t) => {
  const server = await startServer(t, { workAvailableDebounceMs: 0 });
  const worker = await joinRecording(await connectWorker(t, server), { 'manual>*': 1 }, true);
  const woken = nextPush<WorkAvailablePayload>(worker.channel, WORK_AVAILABLE);
  await submitRun(server, { queue: 'q1' });
  t.deepEqual(await woken, { queues: ['q1'] });
  const second = nextPush<WorkAvailablePayload>(worker.channel, WORK_AVAILABLE);
  await submitRun(server, { queue: 'q2' });
  t.deepEqual(await second, { queues: ['q2'] });
  t.is((await push(worker.channel, 'claim', { demand: 0 })).status, 'error', 'a bad claim gets its error reply');
  t.is((await claim(worker.channel, ['*'], 2)).length, 2);
});

/** A registered worker whose pushes are recorded, for the notifier on its own (no socket needed to count queues). */
function recordingWorker(registry: WorkerRegistry, pushes: Array<readonly string[] | null>): void {
  const worker: ConnectedWorker = {
    connectionId: 'c1',
    workerId: 'w1',
    name: null,
    capacity: 1,
    lanes: { '*': 1 },
    laneList: [{ chain: '*', slots: 1 }],
    connectedAt: 0,
    lastSeenAt: 0,
    heartbeats: false,
    cancels: false,
    plans: false,
    lanesMemoryMb: null,
    memoryCeilingMb: null,
    pushWorkAvailable: (queues) => void pushes.push(queues),
    pushRunCancel: () => {},
    serveHeldClaims: async () => true, heldClaimsFor: () => 0, handOffHeld: async () => undefined,
  };
  registry.add(worker);
}

test(`a window that queued work in more than ${MAX_WORK_QUEUES} queues pushes without names, which wakes every lane`, async (t) => {
  const registry = new WorkerRegistry();
  const pushes: Array<readonly string[] | null> = [];
  recordingWorker(registry, pushes);
  const notifier = new WorkNotifier({ registry, debounceMs: 50, logger: pino({ level: 'silent' }) });
  t.teardown(() => notifier.stop());
  notifier.notify('first');
  for (let i = 0; i <= MAX_WORK_QUEUES; i += 1) notifier.notify(`q${i}`);
  await waitFor(() => pushes.length === 2, { message: 'trailing push' });
  t.deepEqual(pushes[0], ['first']);
  t.is(pushes[1], null, `${MAX_WORK_QUEUES + 1} queues are more than one push names`);
  // The trailing push opened a window of its own: these are its queues.
  for (let i = 0; i < MAX_WORK_QUEUES; i += 1) notifier.notify(`r${i}`);
  await waitFor(() => pushes.length === 3, { message: 'second trailing push' });
  t.is(pushes[2]?.length, MAX_WORK_QUEUES, 'exactly the limit is still named');
});
