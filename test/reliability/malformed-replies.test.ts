/**
 * Issue 7, the worker half of point 6: malformed replies from the server.
 * A plan whose start is a missing job, an edge to nowhere or from nowhere, a
 * plan that is not an object, and an input dataclip that is not JSON each end
 * their run `exception` with a clear `error_type`; the worker (real engine,
 * in process) keeps claiming and runs a good plan afterwards.
 *
 * Test double, and only where needed: the real server refuses to store such
 * plans and inputs through its API, so these runs are written straight into
 * its store (`server.store.insertRun`, bypassing the API's validation), and a
 * plan that is not an object at all is written over the row with raw SQL on
 * the same database file. Everything the worker sees still comes from the
 * real server over the real socket.
 */
import test from 'ava';
import { randomUUID } from 'node:crypto';
import { join as joinPath } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import type { RunPlan } from '../../src/protocol/messages.ts';
import type { LanesServer } from '../../src/server/index.ts';
import { tempDir } from '../engine/helpers.ts';
import { startServer, submitRun } from '../server/helpers.ts';
import { startWorker, testConfig } from '../worker/helpers.ts';
import { FIXTURE, FIXTURE_DIR, fixturePlan, waitAllTerminal } from './process-cluster.ts';

type StoredPlan = Omit<RunPlan, 'id' | 'dataclip_id'>;

const job = (id: string) => ({ id, body: 'fn(state => state)', adaptor: FIXTURE });
const trigger = { id: 'trigger', type: 'webhook' };

/** Writes a run straight into the store, as a server with a bug (or another server) might hand it out. */
async function insertRaw(server: LanesServer, plan: StoredPlan, inputJson = '{}'): Promise<string> {
  const id = randomUUID();
  await server.store.insertRun({ id, queue: 'default', priority: 0, maxAttempts: 1, idempotencyKey: null, plan, inputJson, runTimeoutMs: 60_000, now: Date.now() });
  return id;
}

test('malformed plans and a non-JSON dataclip end their runs exception with a named error type; the worker keeps claiming', async (t) => {
  const dir = await tempDir(t, 'lanes-malformed-');
  const dbPath = joinPath(dir, 'lanes.db');
  const server = await startServer(t, { dbPath });

  const cases: Array<{ name: string; id: string; errorType: string; message: RegExp }> = [];
  const add = (name: string, id: string, errorType: string, message: RegExp): void => void cases.push({ name, id, errorType, message });

  add('start node is a missing job', await insertRaw(server, { starting_node_id: 'no-such-job', triggers: [], jobs: [job('job-1')], edges: [] }), 'PlanError', /no-such-job/);
  add(
    'an edge to a job that is not in the plan',
    await insertRaw(server, {
      starting_node_id: 'trigger',
      triggers: [trigger],
      jobs: [job('job-1')],
      edges: [
        { id: 'e-1', source_trigger_id: 'trigger', target_job_id: 'job-1', condition: 'always' },
        { id: 'e-2', source_job_id: 'job-1', target_job_id: 'nowhere', condition: 'always' },
      ],
    }),
    'PlanError',
    /nowhere/,
  );
  add(
    'an edge from a job that is not in the plan',
    await insertRaw(server, {
      starting_node_id: 'trigger',
      triggers: [trigger],
      jobs: [job('job-1')],
      edges: [
        { id: 'e-1', source_trigger_id: 'trigger', target_job_id: 'job-1', condition: 'always' },
        { id: 'e-2', source_job_id: 'nobody', target_job_id: 'job-1', condition: 'always' },
      ],
    }),
    'PlanError',
    /nobody/,
  );
  add('an input dataclip that is not JSON', await insertRaw(server, fixturePlan('fn(state => state)') as unknown as StoredPlan, '{"data": not json'), 'DataClipError', /not JSON/);

  // Plans that are not objects at all: the store only writes objects, so the row is overwritten directly.
  const notObjects: Array<[string, string]> = [
    ['a plan that is a string', JSON.stringify('just a string')],
    ['a plan that is a list', JSON.stringify([1, 2, 3])],
    ['a plan that is null', 'null'],
  ];
  const db = new DatabaseSync(dbPath);
  t.teardown(() => db.close());
  for (const [name, planJson] of notObjects) {
    const id = await insertRaw(server, { starting_node_id: 'job-1', triggers: [], jobs: [job('job-1')], edges: [] });
    db.prepare('UPDATE runs SET plan = ? WHERE id = ?').run(planJson, id);
    add(name, id, 'PlanError', /the plan must be an object/);
  }

  const repoDir = await tempDir(t, 'lanes-malformed-repo-');
  await startWorker(t, {
    config: testConfig({ lightningUrl: server.workerUrl, workloopsText: 'manual>*:2', repoDir }),
    engine: { localAdaptors: { '@openfn/language-lanesfixture': FIXTURE_DIR }, repoDir },
  });

  const bad = await waitAllTerminal(server, cases.map((c) => c.id), 30_000);
  for (const [index, run] of bad.entries()) {
    const expected = cases[index]!;
    t.is(run.state, 'exception', `${expected.name}: ends exception`);
    t.is(run.error_type, expected.errorType, `${expected.name}: error type`);
    t.regex(run.error_message ?? '', expected.message, `${expected.name}: the message says what is wrong`);
  }

  // The worker survived all of it and still claims and runs good work.
  const good = await submitRun(server, { plan: fixturePlan('fn(state => ({ ...state, data: { ok: true } }))') });
  const [run] = await waitAllTerminal(server, [good], 30_000);
  t.is(run?.state, 'success');
});
