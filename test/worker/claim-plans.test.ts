/**
 * `claim_plans` on the worker's side, against a peer that offers it: the
 * claim reply brings the plan and the input, so the run goes to the engine at
 * once and its channel is joined beside it (no `fetch:plan`, no
 * `fetch:dataclip`, events held until the join is answered); a refused join
 * kills the run and reports nothing of it.
 */
import test from 'ava';
import { pino } from 'pino';
import type { EngineRunComplete, RunRequest } from '../../src/engine/types.ts';
import { CAPABILITY_CLAIM_PLANS } from '../../src/protocol/index.ts';
import { waitFor } from '../server/helpers.ts';
import { FIXTURE } from '../reliability/process-cluster.ts';
import { FakeExecutor, startEngineWorker, startWorker, testConfig } from './helpers.ts';
import { LightningMockPeer } from './lightning-mock-peer.ts';

function onePlan(id: string, body: string, dataclipId: string): Record<string, unknown> {
  return {
    id,
    dataclip_id: dataclipId,
    starting_node_id: 't',
    triggers: [{ id: 't', type: 'webhook' }],
    jobs: [{ id: 'job-1', adaptor: FIXTURE, body }],
    edges: [{ id: 'e', source_trigger_id: 't', target_job_id: 'job-1', condition: 'always' }],
  };
}

test('a run whose plan came with the claim starts before its join is answered and fetches neither plan nor input', async (t) => {
  // The join is held long enough that a run waiting for it (join, then fetches) could not have started before.
  const joinDelayMs = 2_500;
  const peer = await LightningMockPeer.start(t, {
    replyDelayMs: 5,
    runJoinDelaysMs: { 'run-a': joinDelayMs },
    claimPlans: true,
    queueJoinReply: { capabilities: [CAPABILITY_CLAIM_PLANS] },
    runs: [
      // First a run that installs the adaptor and warms the pool, so run-a measures a warm start.
      { id: 'run-warm', plan: onePlan('run-warm', 'fn(state => state)', 'clip-a') },
      { id: 'run-a', plan: onePlan('run-a', 'fn(state => ({ ...state, data: { seen: state.data.hello } }))', 'clip-a') },
    ],
    dataclips: { 'clip-a': { data: { hello: 'from the claim' } } },
  });
  await startEngineWorker(t, peer.url);

  const complete = await waitFor(() => peer.eventsOf('run-a').find((e) => e.event === 'run:complete'), { timeoutMs: 30_000, message: 'run:complete of run-a' });
  const payload = complete.payload as Record<string, unknown>;
  t.is(payload['reason'], 'success', JSON.stringify(payload));
  t.deepEqual(payload['final_state'], { data: { seen: 'from the claim' } }, 'the input came from the claim reply');
  const events = peer.eventsOf('run-a');
  t.false(events.some((e) => e.event === 'fetch:plan' || e.event === 'fetch:dataclip'), events.map((e) => e.event).join(' '));
  t.is(events[0]?.event, 'run:start');
  const startedAtMs = Number((events[0]?.payload as { timestamp: string }).timestamp) / 1000;
  const joinAnsweredAt = peer.joinAnsweredAt.get('run-a') ?? Number.NaN;
  t.true(startedAtMs < joinAnsweredAt, `the thread took the run ${Math.round(joinAnsweredAt - startedAtMs)} ms before the join was answered`);
  t.is(peer.maxInFlight, 1, 'events still go one at a time, after the join');
});

test('a run whose join is refused after it started is killed and reports nothing; the lane takes the next run', async (t) => {
  const peer = await LightningMockPeer.start(t, {
    replyDelayMs: 5,
    runJoinDelaysMs: { 'run-x': 300 },
    claimPlans: true,
    queueJoinReply: { capabilities: [CAPABILITY_CLAIM_PLANS] },
    refuseRunJoins: ['run-x'],
    runs: [
      // Never ends by itself: if the refused join did not kill it, the lane's one slot would stay taken.
      { id: 'run-x', plan: onePlan('run-x', 'fn(() => new Promise(() => {}))', 'clip') },
      { id: 'run-y', plan: onePlan('run-y', 'fn(state => ({ ...state, data: { ok: true } }))', 'clip') },
    ],
    dataclips: { clip: { data: {} } },
  });
  await startEngineWorker(t, peer.url, { workloopsText: 'manual>*:1' });

  const complete = await waitFor(() => peer.eventsOf('run-y').find((e) => e.event === 'run:complete'), { timeoutMs: 30_000, message: 'run:complete of run-y' });
  t.is((complete.payload as Record<string, unknown>)['reason'], 'success');
  t.deepEqual(peer.eventsOf('run-x').map((e) => e.event), [], 'nothing of the refused run was pushed');
});

test('a run whose plan and input came with the claim reaches the engine in the same turn as its claim reply', async (t) => {
  const peer = await LightningMockPeer.start(t, {
    claimPlans: true,
    queueJoinReply: { capabilities: [CAPABILITY_CLAIM_PLANS] },
    runs: [{ id: 'run-s', plan: onePlan('run-s', 'fn(state => state)', 'clip-s') }],
    dataclips: { 'clip-s': { data: { n: 1 } } },
  });
  // The worker writes "run claimed" right after it has handed the run to its attempt (worker-runs.ts):
  // a run that reached the engine within that hand-off finds the line not yet written.
  const lines: Array<{ msg?: string; runId?: string }> = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line) as { msg?: string; runId?: string }) });
  const claimedLineAtExecute: boolean[] = [];
  class Recording extends FakeExecutor {
    override execute(request: RunRequest): Promise<EngineRunComplete> {
      claimedLineAtExecute.push(lines.some((line) => line.msg === 'run claimed' && line.runId === request.runId));
      return super.execute(request);
    }
  }
  await startWorker(t, { config: testConfig({ lightningUrl: peer.url, workloopsText: 'manual>*:1' }), executor: new Recording(), logger });
  const complete = await waitFor(() => peer.eventsOf('run-s').find((e) => e.event === 'run:complete'), { timeoutMs: 15_000, message: 'run:complete of run-s' });
  t.is((complete.payload as { reason?: string }).reason, 'success');
  t.deepEqual(claimedLineAtExecute, [false], 'the engine had the run before the line was written');
  t.true(lines.some((line) => line.msg === 'run claimed' && line.runId === 'run-s'), 'the line is written all the same');
});
