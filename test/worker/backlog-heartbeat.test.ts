/**
 * A run a server hands over beyond a lane's demand waits in the lane's
 * backlog until a slot frees. While it waits it is heartbeated (when the
 * server offers `run_heartbeat`), so a lease-keeping server does not declare
 * it lost before it even starts.
 */
import test from 'ava';
import { waitFor } from '../server/helpers.ts';
import { FIXTURE } from '../reliability/process-cluster.ts';
import { startEngineWorker } from './helpers.ts';
import { LightningMockPeer } from './lightning-mock-peer.ts';

const planOf = (id: string, body: string) => ({
  id,
  dataclip_id: 'clip',
  starting_node_id: 't',
  triggers: [{ id: 't', type: 'webhook' }],
  jobs: [{ id: 'job', adaptor: FIXTURE, body }],
  edges: [{ id: 'e', source_trigger_id: 't', target_job_id: 'job', condition: 'always' }],
});

test('a run waiting in a lane backlog is heartbeated before it starts, and then runs', async (t) => {
  const peer = await LightningMockPeer.start(t, {
    runsPerClaim: 2,
    queueJoinReply: { capabilities: ['run_heartbeat'], heartbeat_interval_ms: 100, lease_ms: 1000 },
    runs: [
      { id: 'long', plan: planOf('long', 'fn(state => new Promise(resolve => setTimeout(() => resolve(state), 1500)))') },
      { id: 'waiting', plan: planOf('waiting', 'fn(state => ({ ...state, data: { ran: true } }))') },
    ],
    dataclips: { clip: { data: {} } },
  });
  await startEngineWorker(t, peer.url);
  const complete = await waitFor(() => peer.eventsOf('waiting').find((e) => e.event === 'run:complete'), { timeoutMs: 30_000, message: 'the backlog run to complete' });
  t.is((complete.payload as { reason: string }).reason, 'success');
  const events = peer.eventsOf('waiting').map((e) => e.event);
  const firstFetch = events.indexOf('fetch:plan');
  t.true(events.slice(0, firstFetch).includes('run:heartbeat'), `heartbeats before it started: ${events.join(' ')}`);
  const longDone = peer.received.findIndex((e) => e.topic === 'run:long' && e.event === 'run:complete');
  const waitingPlan = peer.received.findIndex((e) => e.topic === 'run:waiting' && e.event === 'fetch:plan');
  t.true(waitingPlan > longDone, 'it started only when the slot was free');
});
