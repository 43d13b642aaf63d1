import test from 'ava';
import { api, claim, claimedRun, completeRunHappily, connectWorker, joinQueue, joinRun, push, startServer, submitRun } from './helpers.ts';
import { binaryPush, connectRaw } from './raw-socket.ts';

const heartbeatOk = async (raw: Awaited<ReturnType<typeof connectRaw>>, ref: string) => {
  raw.send([null, ref, 'phoenix', 'heartbeat', {}]);
  return (await raw.reply(ref)).status;
};

test('a frame over maxFrameBytes but under the ceiling is answered frame_too_large and the socket lives', async (t) => {
  const server = await startServer(t, { maxFrameBytes: 10_000 });
  const raw = await connectRaw(t, server);
  raw.send(['1', 'big-1', 'worker:queue', 'claim', { filler: 'x'.repeat(12_000) }]);
  t.deepEqual(await raw.reply('big-1'), { status: 'error', response: { reason: 'frame_too_large' }, topic: 'worker:queue' });
  // Numeric refs and whitespace in the head are read too.
  raw.send(` [ 7 , 8 , "run:abc" , "run:log", {"filler": "${'y'.repeat(12_000)}"}]`);
  t.deepEqual(await raw.reply('8'), { status: 'error', response: { reason: 'frame_too_large' }, topic: 'run:abc' });
  // A binary push is read from its header.
  raw.send(binaryPush('1', 'big-2', 'worker:queue', 'claim', new Uint8Array(12_000)));
  t.deepEqual(await raw.reply('big-2'), { status: 'error', response: { reason: 'frame_too_large' }, topic: 'worker:queue' });
  // Nothing to address: dropped, and the socket still answers.
  raw.send(`{"no": "ref", "filler": "${'z'.repeat(12_000)}"}`);
  t.is(await heartbeatOk(raw, 'after'), 'ok');
  t.is(raw.ws.readyState, raw.ws.OPEN);
});

test('a frame over the hard ceiling closes that socket with 1009 and every other connection keeps working', async (t) => {
  const server = await startServer(t, { maxFrameBytes: 10_000, frameCeilingBytes: 20_000 });
  const bystander = await connectWorker(t, server, { workerId: 'bystander' });
  const { channel: queue } = await joinQueue(bystander);
  const raw = await connectRaw(t, server);
  raw.send(['1', 'huge', 'worker:queue', 'claim', { filler: 'x'.repeat(30_000) }]);
  t.is(await raw.closed, 1009);
  const runId = await submitRun(server);
  const [claimed] = await claim(queue, ['*']);
  t.is(claimed?.id, runId);
  if (!claimed) return;
  await completeRunHappily(await joinRun(bystander, claimed), runId);
  const again = await connectRaw(t, server, 'raw-again');
  t.is(await heartbeatOk(again, 'h'), 'ok');
});

test('malformed frames with a ref are answered; without one they are dropped and the socket lives', async (t) => {
  const server = await startServer(t);
  const raw = await connectRaw(t, server);
  raw.send([null, 'short', 'phoenix', 'heartbeat']);
  t.deepEqual(await raw.reply('short'), { status: 'error', response: { reason: 'frame is not a 5-element array' }, topic: 'phoenix' });
  raw.send([{ join: 'ref' }, 'typed', 'worker:queue', 'claim', {}]);
  t.deepEqual(await raw.reply('typed'), { status: 'error', response: { reason: 'frame fields have the wrong types' }, topic: 'worker:queue' });
  raw.send([null, 'event-type', 'worker:queue', 42, {}]);
  t.is((await raw.reply('event-type')).status, 'error');
  raw.send(Buffer.from([9, 9, 9]));
  raw.send(Buffer.from([0, 200, 1, 1, 1, 65]));
  raw.send('');
  raw.send('[');
  raw.send([[1], { ref: 1 }, null, null, null]);
  raw.send([null, 'unknown', 'phoenix', 'phx_join', {}]);
  t.deepEqual(await raw.reply('unknown'), { status: 'error', response: { reason: 'unknown event' }, topic: 'phoenix' });
  // Deep enough that any recursive walk (JSON.stringify included) would overflow the stack.
  raw.send(`[null, "deep", "phoenix", "heartbeat", ${'['.repeat(100_000)}${']'.repeat(100_000)}]`);
  t.deepEqual(await raw.reply('deep'), { status: 'error', response: { reason: 'payload_too_deep' }, topic: 'phoenix' });
  t.is(await heartbeatOk(raw, 'still-here'), 'ok');
});

test('worker:queue refuses bounds-breaking joins and claims with field errors', async (t) => {
  const server = await startServer(t);
  const raw = await connectRaw(t, server);
  raw.send(['j0', 'j0', 'worker:queue', 'phx_join', { capacity: 1e12, queues: { '*': 1e12 } }]);
  const refused = await raw.reply('j0');
  t.is(refused.status, 'error');
  t.deepEqual(Object.keys((refused.response as { errors: Record<string, unknown> }).errors).sort(), ['capacity', 'queues']);
  raw.send(['j1', 'j1', 'worker:queue', 'phx_join', { capacity: 1, queues: { '*': 1 } }]);
  t.is((await raw.reply('j1')).status, 'ok');
  raw.send(['j1', 'c1', 'worker:queue', 'claim', { demand: 1, worker_name: 'n'.repeat(1_000), queues: Array.from({ length: 100 }, (_, i) => `q${i}`) }]);
  const claimReply = await raw.reply('c1');
  t.is(claimReply.status, 'error');
  t.deepEqual(Object.keys(claimReply.response as Record<string, unknown>).sort(), ['queues', 'worker_name']);
  raw.send(['j1', 'c2', 'worker:queue', 'claim', 'not an object']);
  t.deepEqual((await raw.reply('c2')).response, { payload: ['must be an object'], demand: ['must be an integer from 1 to 1000'] });
  raw.send(['j1', 'c3', 'worker:queue', 'no-such-event', {}]);
  t.deepEqual((await raw.reply('c3')).response, { event: ['unknown event no-such-event'] });
  raw.send(['j1', 'c4', 'worker:queue', 'claim', { demand: 1, worker_name: null, queues: ['*'] }]);
  t.deepEqual(await raw.reply('c4'), { status: 'ok', response: { runs: [] }, topic: 'worker:queue' });
});

test('a run channel answers payloads of the wrong type with field errors', async (t) => {
  const server = await startServer(t);
  const { runId, run } = await claimedRun(t, server);
  t.deepEqual(await push(run, 'run:start', { timestamp: 12, versions: 'v1' }), { status: 'error', response: { versions: ['must be an object'] } });
  t.deepEqual(await push(run, 'fetch:credential', { id: 42 }), { status: 'error', response: { id: ["can't be blank"] } });
  t.deepEqual(await push(run, 'fetch:dataclip', { id: ['x'] }), { status: 'error', response: { id: ["can't be blank"] } });
  t.is((await push(run, 'run:start', { timestamp: 'not micros' })).status, 'ok');
  const badComplete = await push<Record<string, string[]>>(run, 'step:complete', { step_id: 's', job_id: 7, reason: 'success', mem: 'lots', duration: -1, thread_id: 'a', output_dataclip: 5, webhook_response: { status: 42 } });
  t.is(badComplete.status, 'error');
  t.deepEqual(Object.keys(badComplete.response).sort(), ['duration', 'job_id', 'mem', 'output_dataclip', 'output_dataclip_id', 'step_id', 'thread_id', 'webhook_response.status']);
  t.deepEqual(await push(run, 'run:batch_logs', { logs: 'nope' }), { status: 'error', response: { logs: ['must be a list'] } });
  t.deepEqual(await push(run, 'run:complete', { reason: 'success', error_type: 1 }), { status: 'error', response: { error_type: ['must be a string or null'] } });
  const detail = await api(server, 'GET', `/api/runs/${runId}`).then((r) => r.body);
  t.is(detail['state'], 'started');
  t.deepEqual(detail['steps'], []);
});
