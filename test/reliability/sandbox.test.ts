/**
 * A sandbox job code cannot talk its way out of (docs/security.md):
 *
 * - real escape code in a real engine finds no `parentPort`, cannot catch the
 *   port by replacing what the runtime calls to post, and the run's reported
 *   outcome is its true one;
 * - a real engine child whose thread posts what a compromised thread would
 *   (forged ends, steps out of order, another job's credential) passes none
 *   of it on: the run ends as a sandbox violation.
 *
 * The rest of the escape surface (secrets in the environment, files, child
 * processes, signals) is covered in security.test.ts.
 */
import test from 'ava';
import type { ExecutionContext } from 'ava';
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { ChildConfig, ChildToParent, ParentToChild } from '../../src/engine/ipc-messages.ts';
import type { ExecutionRequest } from '../../src/runtime/execution-request.ts';
import { FIXTURE_DIR, job, logsOf, plan, request, startEngine, stepCompletes, tempDir } from '../engine/helpers.ts';
import { api, startServer, submitRun, waitFor } from '../server/helpers.ts';
import { startWorker, testConfig } from '../worker/helpers.ts';

/** Escapes the vm context, hunts for the thread's port three ways, and forges a success end if it gets it. */
const PORT_HUNT = `
fn(async (state) => {
  const out = {};
  const G = state.constructor.constructor('return globalThis')();
  const wt = G.process.getBuiltinModule('worker_threads');
  out.parentPort = wt.parentPort === null ? 'null' : typeof wt.parentPort;
  let caught = wt.parentPort || null;
  const replace = (name, target, key) => {
    try {
      const original = target[key];
      target[key] = function (...args) { caught = caught || this; return original.apply(this, args); };
      out[name] = target[key] === original ? 'unchanged' : 'replaced';
    } catch (error) {
      out[name] = 'refused ' + error.name;
    }
  };
  replace('postMessage', G.MessagePort.prototype, 'postMessage');
  replace('dispatchEvent', G.EventTarget.prototype, 'dispatchEvent');
  const originalApply = G.Reflect.apply;
  G.Reflect.apply = function (f, self, args) { if (self && typeof self.postMessage === 'function') caught = caught || self; return originalApply(f, self, args); };
  console.log('the runtime posts this line');
  await new Promise((resolve) => setTimeout(resolve, 50));
  G.Reflect.apply = originalApply;
  out.caught = caught ? 'the port' : 'nothing';
  if (caught) caught.postMessage({ type: 'end', end: { reason: 'success', errorType: null, errorMessage: null, finalState: { forged: true } } });
  console.log('probe ' + JSON.stringify(out));
  throw new Error('the true outcome');
});
`;

test('escaped job code finds no parentPort, cannot catch the port, and its run ends as it truly did', async (t) => {
  const engine = await startEngine(t);
  const { request: req, events } = request(plan([job('hunt', PORT_HUNT)]));
  const outcome = await engine.execute(req);
  const probeLine = logsOf(events).map((line) => String(line[0])).find((line) => line.startsWith('probe '));
  t.log(probeLine);
  const probe = JSON.parse(probeLine?.slice('probe '.length) ?? '{}') as Record<string, string>;
  t.is(probe['parentPort'], 'null', 'worker_threads.parentPort is null in a run thread');
  t.regex(probe['postMessage'] ?? '', /^refused TypeError/, 'MessagePort.prototype is frozen');
  t.regex(probe['dispatchEvent'] ?? '', /^refused TypeError/, 'EventTarget.prototype is frozen');
  t.is(probe['caught'], 'nothing', 'no way to the port was found');
  t.is(outcome.reason, 'fail', JSON.stringify(outcome));
  t.is(outcome.errorMessage, 'the true outcome');
  t.is(stepCompletes(events).length, 1);
  t.false(JSON.stringify(events).includes('forged'));
});

test('a job that calls the server API without a token gets 401 and changes nothing', async (t) => {
  const server = await startServer(t);
  const repoDir = await tempDir(t, 'lanes-sandbox-repo-');
  await startWorker(t, {
    // A strict lane: the fast_lane run below must stay available for the job to suspend or list.
    config: testConfig({ lightningUrl: server.workerUrl, workloopsText: 'manual:1', repoDir }),
    engine: { localAdaptors: { '@openfn/language-lanesfixture': FIXTURE_DIR }, repoDir },
  });
  const other = await submitRun(server, { queue: 'fast_lane' });
  // Job code reaches the network like an adaptor's http helper would: the API is a client door like any other.
  const body = `fn(async (state) => {
    const f = state.constructor.constructor('return fetch')();
    const base = state.data.base;
    const list = await f(base + '/api/runs');
    const suspend = await f(base + '/api/queues/fast_lane/suspend', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    const text = await f(base + '/api/runs', { method: 'POST', headers: { 'content-type': 'text/plain' }, body: '{"plan":{}}' });
    return { data: { list: list.status, listBody: await list.json(), suspend: suspend.status, text: text.status } };
  });`;
  const id = await submitRun(server, {
    queue: 'manual',
    input: { data: { base: server.url } },
    plan: {
      triggers: [{ id: 'trigger', type: 'webhook' }],
      jobs: [{ id: 'job-1', body, adaptor: '@openfn/language-lanesfixture@1.0.0' }],
      edges: [{ id: 'e', source_trigger_id: 'trigger', target_job_id: 'job-1', condition: 'always' }],
    },
  });
  const run = await waitFor(
    async () => {
      const view = (await api<{ state: string; final_state: { data: Record<string, unknown> } }>(server, 'GET', `/api/runs/${id}`)).body;
      return view.state === 'success' || view.state === 'failed' || view.state === 'crashed' ? view : null;
    },
    { timeoutMs: 60_000, message: 'the run to finish' },
  );
  t.is(run.state, 'success', JSON.stringify(run));
  t.like(run.final_state.data, { list: 401, listBody: { error: 'missing_token' }, suspend: 401, text: 401 });
  t.false((await server.store.queueStats()).some((queue) => queue.suspended), 'the fast lane was not suspended');
  t.is((await server.store.getRun(other))?.state, 'available');
});

const CHILD_MAIN = fileURLToPath(new URL('../../src/engine/child-main.ts', import.meta.url));
const COMPROMISED_THREAD = fileURLToPath(new URL('../fixtures/compromised-thread.ts', import.meta.url));

/** A real engine child whose run threads run `compromised-thread.ts`; collects what it sends to its parent. */
async function compromisedChild(t: ExecutionContext): Promise<{ send: (m: ParentToChild) => void; received: ChildToParent[] }> {
  const config: ChildConfig = { spareMemoryLimitMb: 128, warmSpares: false, preload: [], threadEntry: COMPROMISED_THREAD, nice: 0 };
  const child = fork(CHILD_MAIN, [JSON.stringify(config)], { serialization: 'advanced', stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  t.teardown(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const gone = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await gone;
  });
  const received: ChildToParent[] = [];
  child.on('message', (message: ChildToParent) => received.push(message));
  await waitFor(() => received.some((m) => m.type === 'ready'), { timeoutMs: 20_000, message: 'the child to be ready' });
  return { send: (message) => child.send(message), received };
}

function twoJobRequest(messages: unknown[]): ExecutionRequest {
  return {
    runId: 'run-1',
    jobs: [
      { id: 'job-a', body: 'x', adaptor: null, credentialId: 'cred-a' },
      { id: 'job-b', body: 'x', adaptor: null, credentialId: 'cred-b' },
    ],
    triggerIds: ['t'],
    edges: [],
    startingNodeId: 't',
    input: { messages },
    payloadLimitMb: 1,
    logPayloadLimitMb: 1,
    statePropsToRemove: [],
  };
}

const ts = '1700000000000000';
const started = { type: 'started', timestamp: ts };
const stepStart = (stepId: string, jobId: string) => ({ type: 'event', event: { type: 'step-start', stepId, jobId, timestamp: ts } });
const stepComplete = (stepId: string, jobId: string) => ({
  type: 'event',
  event: { type: 'step-complete', stepId, jobId, reason: 'success', errorType: null, errorMessage: null, outputJson: '{}', outputTooLarge: false, mem: { job: 0, system: 0 }, durationMs: 1, timestamp: ts },
});
const successEnd = { type: 'end', end: { reason: 'success', errorType: null, errorMessage: null, finalState: { forged: true } } };
const credentialRequest = (credentialId: string) => ({ type: 'credential-request', requestId: 1, credentialId });

const violations: Array<[string, unknown[], RegExp, number]> = [
  ['a success end while its step is open', [started, stepStart('s1', 'job-a'), successEnd], /a success end without every step completed/, 1],
  ['another job’s credential', [started, stepStart('s1', 'job-a'), credentialRequest('cred-b')], /another job's credential/, 1],
  ['a credential outside any step', [started, credentialRequest('cred-a')], /a credential request outside a step/, 0],
  ['a step of a job not in the plan', [started, stepStart('s1', 'job-zz')], /job "job-zz", not in the plan/, 0],
  ['a step-complete for a step that never started', [started, stepComplete('s9', 'job-a')], /step-complete for a step that is not open/, 0],
  ['a second step while one is open', [started, stepStart('s1', 'job-a'), stepStart('s2', 'job-b')], /step-start while step s1 is open/, 1],
  ['a step id used twice', [started, stepStart('s1', 'job-a'), stepComplete('s1', 'job-a'), stepStart('s1', 'job-b')], /step id already used/, 2],
  ['an event before the run started', [stepStart('s1', 'job-a')], /step-start before the run started/, 0],
];

for (const [what, messages, rule, forwarded] of violations) {
  test(`the child passes on nothing a compromised thread forges: ${what}`, async (t) => {
    const child = await compromisedChild(t);
    child.send({ type: 'run', runId: 'run-1', request: twoJobRequest(messages), memoryLimitMb: 128, urgent: false });
    const ended = await waitFor(() => child.received.find((m) => m.type === 'run-ended'), { timeoutMs: 20_000, message: 'the run to end' });
    if (ended.type !== 'run-ended') return t.fail();
    t.is(ended.end.reason, 'crash');
    t.regex(ended.end.errorMessage ?? '', /^Uncaught SandboxViolation: the run's thread posted /);
    t.regex(ended.end.errorMessage ?? '', rule);
    t.is(child.received.filter((m) => m.type === 'event').length, forwarded, 'only the messages before the violation were passed on');
    t.false(child.received.some((m) => m.type === 'credential-request'), 'no credential was asked of the worker');
    t.false(JSON.stringify(child.received).includes('forged'));
  });
}

test('the child passes on a credential request for the open step’s own credential, and a well-ordered run', async (t) => {
  const child = await compromisedChild(t);
  const messages = [started, stepStart('s1', 'job-a'), credentialRequest('cred-a'), stepComplete('s1', 'job-a'), { type: 'end', end: { reason: 'success', errorType: null, errorMessage: null, finalState: {} } }];
  child.send({ type: 'run', runId: 'run-1', request: twoJobRequest(messages), memoryLimitMb: 128, urgent: false });
  const ended = await waitFor(() => child.received.find((m) => m.type === 'run-ended'), { timeoutMs: 20_000, message: 'the run to end' });
  if (ended.type !== 'run-ended') return t.fail();
  t.is(ended.end.reason, 'success');
  t.deepEqual(child.received.filter((m) => m.type === 'credential-request'), [{ type: 'credential-request', runId: 'run-1', requestId: 1, credentialId: 'cred-a' }]);
  t.is(child.received.filter((m) => m.type === 'event').length, 2);
});
