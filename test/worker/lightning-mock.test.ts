/**
 * OpenFn's lightning-mock as a peer: a worker with the real engine runs
 * plans served the way that mock serves them (replies as `chan_reply_<ref>`,
 * joins answered with a string, the input as a JSON array of bytes, lenient
 * plans), with every reply delayed, and sends one event at a time per run,
 * `fetch:credential` included.
 */
import test from 'ava';
import { waitFor } from '../server/helpers.ts';
import { FIXTURE } from '../reliability/process-cluster.ts';
import { startEngineWorker } from './helpers.ts';
import { LightningMockPeer } from './lightning-mock-peer.ts';

const credentialJob = {
  id: 'job-1',
  adaptor: FIXTURE,
  credential_id: 'cred-1',
  body: 'fn(state => { console.log("before"); console.log("after"); return { ...state, data: { input: state.data, user: state.configuration.user } }; })',
};

async function completeOf(peer: LightningMockPeer, runId: string): Promise<Record<string, unknown>> {
  const event = await waitFor(() => peer.eventsOf(runId).find((e) => e.event === 'run:complete'), { timeoutMs: 30_000, message: `run:complete of ${runId}` });
  return event.payload as Record<string, unknown>;
}

test('runs served as lightning-mock serves them succeed, with one event in flight per run', async (t) => {
  const peer = await LightningMockPeer.start(t, {
    replyDelayMs: 25,
    runs: [
      {
        // The mock's shape for Lightning's plan: a binary-less dataclip, no starting_node_id.
        id: 'run-a',
        plan: {
          id: 'run-a',
          dataclip_id: 'clip-a',
          triggers: [{ id: 't', type: 'webhook' }],
          jobs: [credentialJob],
          edges: [{ id: 'e', source_trigger_id: 't', target_job_id: 'job-1', condition: 'always' }],
        },
      },
      {
        // ws-worker's test plans: no triggers, no dataclip, no starting node.
        id: 'run-b',
        plan: {
          id: 'run-b',
          jobs: [
            { id: 'j1', adaptor: FIXTURE, body: 'fn(state => ({ ...state, data: { n: 1 } }))' },
            { id: 'j2', adaptor: FIXTURE, body: 'fn(state => ({ ...state, data: { n: state.data.n + 1 } }))' },
          ],
          edges: [{ id: 'j1-j2', source_job_id: 'j1', target_job_id: 'j2' }],
        },
      },
    ],
    dataclips: { 'clip-a': { data: { hello: 'mock' } } },
    credentials: { 'cred-1': { user: 'alice' } },
  });
  await startEngineWorker(t, peer.url);

  const a = await completeOf(peer, 'run-a');
  t.is(a['reason'], 'success', JSON.stringify(a));
  t.deepEqual(a['final_state'], { data: { input: { hello: 'mock' }, user: 'alice' } });
  const eventsA = peer.eventsOf('run-a').map((e) => e.event);
  t.deepEqual(eventsA.slice(0, 3), ['fetch:plan', 'fetch:dataclip', 'run:start'], eventsA.join(' '));
  t.true(eventsA.indexOf('fetch:credential') > eventsA.indexOf('step:start'), eventsA.join(' '));
  t.deepEqual(Object.keys(a).sort(), ['error_message', 'error_type', 'final_dataclip_id', 'final_state', 'reason', 'timestamp'].filter((k) => k in a).sort());

  const b = await completeOf(peer, 'run-b');
  t.is(b['reason'], 'success', JSON.stringify(b));
  t.deepEqual(b['final_state'], { data: { n: 2 } });
  const eventsB = peer.eventsOf('run-b').map((e) => e.event);
  t.false(eventsB.includes('fetch:dataclip'), 'a plan without a dataclip fetches none');
  const firstStep = peer.eventsOf('run-b').find((e) => e.event === 'step:start')?.payload as Record<string, unknown>;
  t.is(firstStep['job_id'], 'j1', 'the run starts at the first job when the plan names no start');
  t.false('input_dataclip_id' in firstStep);

  t.is(peer.maxInFlight, 1, 'each run event waited for the reply to the one before it');
});

test('a credential that is not a JSON object ends the run exception with CredentialError, the body never quoted', async (t) => {
  const peer = await LightningMockPeer.start(t, {
    runs: [{ id: 'run-c', plan: { id: 'run-c', jobs: [credentialJob] } }],
    credentials: { 'cred-1': 'hunter2-as-a-bare-string' },
  });
  await startEngineWorker(t, peer.url);
  const complete = await completeOf(peer, 'run-c');
  t.is(complete['reason'], 'exception', JSON.stringify(complete));
  t.is(complete['error_type'], 'CredentialError');
  t.regex(String(complete['error_message']), /credential cred-1 must be a JSON object/);
  t.notRegex(JSON.stringify(complete), /hunter2/);
});
