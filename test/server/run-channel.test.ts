import test from 'ava';
import type { RunPlan } from '../../src/protocol/index.ts';
import { api, claim, claimedRun, completeRunHappily, connectWorker, join, joinQueue, joinRun, push, startServer, submitRun } from './helpers.ts';

const ts = () => String(Date.now() * 1000);

test('the full run-channel sequence, with the binary dataclip and a credential', async (t) => {
  const server = await startServer(t);
  t.is((await api(server, 'PUT', '/api/credentials/cred-1', { user: 'u', password: 'p' })).status, 200);
  const plan = {
    triggers: [{ id: 'trigger' }],
    jobs: [{ id: 'job-1', body: 'fn(s => s)', adaptor: '@openfn/language-common@latest', credential_id: 'cred-1' }],
    edges: [{ id: 'e', source_trigger_id: 'trigger', target_job_id: 'job-1' }],
    options: { run_timeout_ms: 5000 },
  };
  const runId = await submitRun(server, { plan, input: { data: { greeting: 'héllo' } } });
  const socket = await connectWorker(t, server);
  const { channel: queue } = await joinQueue(socket);
  const [claimed] = await claim(queue, ['*'], 1);
  t.is(claimed?.id, runId);
  if (!claimed) return;
  const run = await joinRun(socket, claimed);

  const fetched = await push<RunPlan>(run, 'fetch:plan');
  t.is(fetched.status, 'ok');
  t.is(fetched.response.id, runId);
  t.is(fetched.response.starting_node_id, 'trigger');
  t.is(fetched.response.jobs[0]?.credential_id, 'cred-1');

  const dataclip = await push<ArrayBuffer>(run, 'fetch:dataclip', { id: fetched.response.dataclip_id });
  t.is(dataclip.status, 'ok');
  t.true(dataclip.response instanceof ArrayBuffer);
  t.deepEqual(JSON.parse(new TextDecoder().decode(dataclip.response)), { data: { greeting: 'héllo' } });
  t.deepEqual((await push(run, 'fetch:dataclip', { id: 'nope' })).response, { id: ['Dataclip not found'] });

  t.deepEqual(await push(run, 'fetch:credential', { id: 'cred-1' }), { status: 'ok', response: { user: 'u', password: 'p' } });
  t.deepEqual(await push(run, 'fetch:credential', { id: 'cred-2' }), { status: 'error', response: { id: ['Credential not found!'] } });

  t.deepEqual(await push(run, 'run:start', { timestamp: ts(), versions: { worker: '0.1.0' } }), { status: 'ok', response: {} });
  t.deepEqual(await push(run, 'step:start', { step_id: 's1', job_id: 'job-1', input_dataclip_id: fetched.response.dataclip_id, timestamp: ts() }), {
    status: 'ok',
    response: { step_id: 's1' },
  });
  const log = await push<{ log_line_id: string }>(run, 'run:log', { run_id: runId, message: ['hi', { a: 1 }], level: 'info', source: 'JOB', step_id: 's1', timestamp: ts() });
  t.is(log.status, 'ok');
  t.is(typeof log.response.log_line_id, 'string');
  t.deepEqual(
    await push(run, 'run:batch_logs', { run_id: runId, logs: [{ run_id: runId, message: ['a'], level: 'debug', source: 'R/T', timestamp: ts() }, { run_id: runId, message: ['b'], level: 'info', source: 'JOB', step_id: 's1', timestamp: ts() }] }),
    { status: 'ok', response: {} },
  );
  t.deepEqual(await push(run, 'run:heartbeat', { timestamp: ts() }), { status: 'ok', response: {} });
  t.deepEqual(
    await push(run, 'step:complete', {
      step_id: 's1', job_id: 'job-1', reason: 'success', error_type: null, error_message: null,
      output_dataclip: '{"data":{"x":1}}', output_dataclip_id: 'out-1', mem: { job: 10, system: 20 }, duration: 12, thread_id: 1, timestamp: ts(),
    }),
    { status: 'ok', response: { step_id: 's1' } },
  );
  t.deepEqual(
    await push(run, 'run:complete', { reason: 'success', error_type: null, error_message: null, final_dataclip_id: 'out-1', final_state: { data: { x: 1 } }, timestamp: ts() }),
    { status: 'ok', response: {} },
  );
  t.deepEqual(await push(run, 'phx_leave'), { status: 'ok', response: {} });

  const detail = await api(server, 'GET', `/api/runs/${runId}`);
  t.is(detail.body['state'], 'success');
  t.is(detail.body['reason'], 'success');
  t.is(detail.body['worker'], 'worker-1');
  t.is(detail.body['attempts'], 1);
  t.deepEqual(detail.body['final_state'], { data: { x: 1 } });
  const steps = detail.body['steps'] as Array<Record<string, unknown>>;
  t.is(steps.length, 1);
  t.is(steps[0]?.['output_dataclip_id'], 'out-1');
  t.is(steps[0]?.['reason'], 'success');
  t.truthy(detail.body['started_at']);
  t.truthy(detail.body['finished_at']);
  const logs = await api<{ logs: Array<{ message: unknown[] }> }>(server, 'GET', `/api/runs/${runId}/logs`);
  t.deepEqual(logs.body.logs.map((line) => line.message), [['hi', { a: 1 }], ['a'], ['b']]);
});

test('validation errors are field maps and change nothing', async (t) => {
  const server = await startServer(t);
  const { runId, run } = await claimedRun(t, server);
  t.deepEqual(await push(run, 'step:start', { step_id: 's1', job_id: 'job-1', timestamp: ts() }), { status: 'error', response: { state: ['run has not started'] } });
  t.is((await push(run, 'run:start', { timestamp: ts() })).status, 'ok');
  t.deepEqual(await push(run, 'step:start', { step_id: 's1', job_id: 'not-a-job', timestamp: ts() }), { status: 'error', response: { job_id: ['is not a job of this plan'] } });
  t.deepEqual(await push(run, 'step:start', { job_id: 'job-1' }), { status: 'error', response: { step_id: ["can't be blank"] } });
  const badLog = await push<Record<string, string[]>>(run, 'run:log', { run_id: 'other', message: 'x', level: '', source: 'JOB', timestamp: 'yesterday' });
  t.is(badLog.status, 'error');
  t.deepEqual(Object.keys(badLog.response).sort(), ['level', 'message', 'run_id', 'timestamp']);
  const badBatch = await push<Record<string, string[]>>(run, 'run:batch_logs', { run_id: runId, logs: [{ message: ['ok'], level: 'info', source: 'JOB' }, { message: ['x'] }] });
  t.deepEqual(Object.keys(badBatch.response).sort(), ['logs[1].level', 'logs[1].source']);
  t.deepEqual(await push(run, 'step:complete', { step_id: 'never-started', job_id: 'job-1', reason: 'success' }), {
    status: 'error',
    response: { step_id: ['is not a started step of this run'] },
  });
  t.deepEqual(await push(run, 'run:complete', { reason: 'meh' }), { status: 'error', response: { reason: ['is invalid'] } });
  t.deepEqual(await push(run, 'no:such:event', {}), { status: 'error', response: { event: ['unknown event no:such:event'] } });
  const logs = await api<{ logs: unknown[] }>(server, 'GET', `/api/runs/${runId}/logs`);
  t.is(logs.body.logs.length, 0);
  t.is((await api(server, 'GET', `/api/runs/${runId}`)).body['state'], 'started');
});

test('idempotent repeats return the first reply and write nothing', async (t) => {
  const server = await startServer(t);
  const { runId, run } = await claimedRun(t, server);
  t.is((await push(run, 'run:start', { timestamp: ts() })).status, 'ok');
  t.deepEqual(await push(run, 'run:start', { timestamp: ts() }), { status: 'ok', response: {} });
  t.is((await push(run, 'step:start', { step_id: 's1', job_id: 'job-1', timestamp: ts() })).status, 'ok');
  t.deepEqual(await push(run, 'step:start', { step_id: 's1', job_id: 'job-1', timestamp: ts() }), { status: 'ok', response: { step_id: 's1' } });
  const line = { run_id: runId, message: ['once'], level: 'info', source: 'JOB', timestamp: ts(), log_id: 'l1' };
  const first = await push<{ log_line_id: string }>(run, 'run:log', line);
  const again = await push<{ log_line_id: string }>(run, 'run:log', line);
  t.is(again.response.log_line_id, first.response.log_line_id);
  const batch = { run_id: runId, log_id: 'b1', logs: [{ ...line, log_id: 'l2', message: ['two'] }, { ...line, log_id: 'l1' }] };
  t.is((await push(run, 'run:batch_logs', batch)).status, 'ok');
  t.is((await push(run, 'run:batch_logs', batch)).status, 'ok');
  const complete = { step_id: 's1', job_id: 'job-1', reason: 'success', error_type: null, error_message: null, output_dataclip: '{}', output_dataclip_id: 'o1', mem: { job: 1, system: 1 }, duration: 1, timestamp: ts() };
  t.deepEqual(await push(run, 'step:complete', complete), { status: 'ok', response: { step_id: 's1' } });
  t.deepEqual(await push(run, 'step:complete', complete), { status: 'ok', response: { step_id: 's1' } });
  const done = { reason: 'success', error_type: null, error_message: null, timestamp: ts() };
  t.deepEqual(await push(run, 'run:complete', done), { status: 'ok', response: {} });
  t.deepEqual(await push(run, 'run:complete', done), { status: 'ok', response: {} });
  const logs = await api<{ logs: Array<{ message: unknown[] }> }>(server, 'GET', `/api/runs/${runId}/logs`);
  t.deepEqual(logs.body.logs.map((l) => l.message), [['once'], ['two']]);
  const detail = await api(server, 'GET', `/api/runs/${runId}`);
  t.is((detail.body['steps'] as unknown[]).length, 1);
  t.is(detail.body['state'], 'success');
});

test('late and foreign events never change a finished run', async (t) => {
  const server = await startServer(t);
  const { runId, socket, claimed, run } = await claimedRun(t, server);
  await completeRunHappily(run, runId);
  // A second completion from the same attempt is a repeat: the first reply, nothing written.
  t.deepEqual(await push(run, 'run:complete', { reason: 'fail', error_type: 'X', error_message: 'late' }), { status: 'ok', response: {} });
  t.deepEqual(await push(run, 'run:log', { run_id: runId, message: ['late'], level: 'info', source: 'JOB', timestamp: ts() }), {
    status: 'error',
    response: { state: ['already in completed state'] },
  });
  t.deepEqual(await push(run, 'run:heartbeat', { timestamp: ts() }), { status: 'error', response: { state: ['already in completed state'] } });
  // Another worker cannot join with the token.
  const intruder = await connectWorker(t, server, { workerId: 'intruder' });
  t.deepEqual((await join(intruder, `run:${runId}`, { token: claimed.token })).response, { reason: 'unauthorized' });
  // A token for one run does not open another.
  const other = await submitRun(server);
  t.deepEqual((await join(socket, `run:${other}`, { token: claimed.token })).response, { reason: 'unauthorized' });
  const detail = await api(server, 'GET', `/api/runs/${runId}`);
  t.is(detail.body['state'], 'success');
  t.is(detail.body['error_message'], null);
});
