import test from 'ava';
import type { EngineStepComplete } from '../../src/engine/types.ts';
import type { RunPlan } from '../../src/protocol/messages.ts';
import { RunEventMapper } from '../../src/worker/run-event-mapper.ts';

const plan: RunPlan = {
  id: 'run-1',
  dataclip_id: 'input-dc',
  starting_node_id: 't',
  triggers: [{ id: 't' }],
  jobs: [
    { id: 'a', body: '', adaptor: 'x' },
    { id: 'b', body: '', adaptor: 'x' },
    { id: 'c', body: '', adaptor: 'x' },
  ],
  edges: [
    { id: 'e0', source_trigger_id: 't', target_job_id: 'a' },
    { id: 'e1', source_job_id: 'a', target_job_id: 'b' },
    { id: 'e2', source_job_id: 'b', target_job_id: 'c' },
  ],
};

function complete(stepId: string, jobId: string, extra: Partial<EngineStepComplete> = {}): EngineStepComplete {
  return { type: 'step-complete', stepId, jobId, reason: 'success', errorType: null, errorMessage: null, outputJson: '{"x":1}', outputTooLarge: false, mem: { job: 1, system: 2 }, durationMs: 3, timestamp: '1', ...extra };
}

function mapper(keyLogs = false, planOverride: RunPlan = plan): RunEventMapper {
  let n = 0;
  return new RunEventMapper({ runId: 'run-1', plan: planOverride, keyLogs, payloadLimitBytes: 1024, makeId: () => `id-${++n}` });
}

test('the dataclip chain: run input, then each upstream output; a too-large output leaves the next input out', (t) => {
  const m = mapper();
  t.is(m.stepStart({ type: 'step-start', stepId: 's1', jobId: 'a', timestamp: '1' }).input_dataclip_id, 'input-dc');
  const first = m.stepComplete(complete('s1', 'a'));
  t.is(first.output_dataclip_id, 'id-1');
  t.is(first.output_dataclip, '{"x":1}');
  t.is(m.stepStart({ type: 'step-start', stepId: 's2', jobId: 'b', timestamp: '1' }).input_dataclip_id, 'id-1');
  const second = m.stepComplete(complete('s2', 'b', { outputJson: null, outputTooLarge: true }));
  t.is(second.output_dataclip_error, 'DATACLIP_TOO_LARGE');
  t.false('output_dataclip_id' in second);
  t.false('output_dataclip' in second);
  t.false('input_dataclip_id' in m.stepStart({ type: 'step-start', stepId: 's3', jobId: 'c', timestamp: '1' }));
  const end = m.runComplete({ type: 'run-complete', reason: 'success', errorType: null, errorMessage: null, finalState: { big: true }, finalStepId: 's2', timestamp: '2' });
  t.false('final_dataclip_id' in end);
  t.false('final_state' in end, 'the state that was too large is not sent as final_state either');
});

test('final_dataclip_id names the only leaf output; output_dataclips false sends no dataclips', (t) => {
  const m = mapper();
  m.stepComplete(complete('s1', 'a', { webhookResponse: { status: 201 } }));
  const end = m.runComplete({ type: 'run-complete', reason: 'success', errorType: null, errorMessage: null, finalState: { x: 1 }, finalStepId: 's1', timestamp: '2' });
  t.is(end.final_dataclip_id, 'id-1');
  t.deepEqual(end.final_state, { x: 1 });

  const quiet = mapper(false, { ...plan, options: { output_dataclips: false } });
  const step = quiet.stepComplete(complete('s1', 'a'));
  t.false('output_dataclip' in step);
  t.false('output_dataclip_id' in step);
});

test('log lines carry a log_id only under idempotent_events', (t) => {
  const event = { type: 'log' as const, level: 'info', source: 'JOB', message: ['hi'], stepId: 's1', timestamp: '1' };
  t.false('log_id' in mapper(false).log(event));
  t.is(mapper(true).log(event).log_id, 'id-1');
  t.deepEqual(mapper(false).log(event), { run_id: 'run-1', message: ['hi'], level: 'info', source: 'JOB', step_id: 's1', timestamp: '1' });
});
