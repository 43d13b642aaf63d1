/**
 * The JSON API's routes for runs once stored: a page of runs, one run with
 * its steps and attempts, its logs, cancel, and a dead letter's retry.
 */
import type { ServerResponse } from 'node:http';
import { QUEUE_NAME_PATTERN, RUN_STATES } from '../protocol/index.ts';
import type { RunDetailView, RunState } from '../protocol/index.ts';
import { badQueueName } from './field-errors.ts';
import type { HttpApiDeps } from './http-api-deps.ts';
import { sendJson } from './http-json.ts';
import { HttpProblem } from './http-problem.ts';
import { memoryWaitReason } from './memory-wait-reason.ts';
import { logView, runDetailView, runSummaryView } from './run-view.ts';
import type { RunRecord } from './store/store.ts';

export const DEFAULT_LIST_LIMIT = 100;
export const MAX_LIST_LIMIT = 1000;

export async function runDetail(deps: HttpApiDeps, run: RunRecord): Promise<RunDetailView> {
  const { store, registry } = deps;
  const [steps, attempts] = await Promise.all([store.getSteps(run.id), store.getAttempts(run.id)]);
  return { ...runDetailView(run, steps, attempts), waiting_reason: memoryWaitReason(run, registry.list()) };
}

export async function listRuns(deps: HttpApiDeps, res: ServerResponse, url: URL): Promise<void> {
  const queue = url.searchParams.get('queue');
  if (queue !== null && !QUEUE_NAME_PATTERN.test(queue)) throw new HttpProblem(400, 'validation', badQueueName(queue), 'queue');
  const state = url.searchParams.get('state');
  if (state !== null && !(RUN_STATES as readonly string[]).includes(state)) {
    throw new HttpProblem(400, 'validation', `must be one of ${RUN_STATES.join(', ')}`, 'state');
  }
  const limitParam = url.searchParams.get('limit');
  const limit = limitParam === null ? DEFAULT_LIST_LIMIT : Number(limitParam);
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIST_LIMIT) throw new HttpProblem(400, 'validation', `must be an integer from 1 to ${MAX_LIST_LIMIT}`, 'limit');
  const deadLetterParam = url.searchParams.get('dead_letter');
  if (deadLetterParam !== null && deadLetterParam !== 'true' && deadLetterParam !== 'false') {
    throw new HttpProblem(400, 'validation', 'must be true or false', 'dead_letter');
  }
  const before = url.searchParams.get('before');
  if (before !== null && !/^[1-9]\d{0,15}$/.test(before)) throw new HttpProblem(400, 'validation', 'must be a next_cursor from an earlier page', 'before');
  const runs = await deps.store.listRuns({
    limit,
    ...(before === null ? {} : { beforeSeq: Number(before) }),
    ...(queue === null ? {} : { queue }),
    ...(state === null ? {} : { state: state as RunState }),
    ...(deadLetterParam === null ? {} : { deadLetter: deadLetterParam === 'true' }),
  });
  // Keyset pages: the cursor is the last run's insertion order, so a page costs the same at any depth.
  const last = runs.at(-1);
  sendJson(res, 200, { runs: runs.map(runSummaryView), ...(runs.length === limit && last ? { next_cursor: String(last.seq) } : {}) });
}

export async function findRun(deps: HttpApiDeps, id: string): Promise<RunRecord> {
  const run = await deps.store.getRun(id);
  if (!run) throw new HttpProblem(404, 'not_found', 'no such run', 'id');
  return run;
}

export async function showRun(deps: HttpApiDeps, res: ServerResponse, id: string): Promise<void> {
  sendJson(res, 200, await runDetail(deps, await findRun(deps, id)));
}

export async function showRunLogs(deps: HttpApiDeps, res: ServerResponse, id: string): Promise<void> {
  const run = await findRun(deps, id);
  sendJson(res, 200, { logs: (await deps.store.getLogs(run.id)).map(logView) });
}

/**
 * Cancels a run that has not ended. An available run never starts; a run in
 * flight is marked `cancelled` at once, and its worker is told by a
 * `run:cancel` push when it declared `run_cancel` (the lifecycle does it);
 * any other worker learns it from the error reply
 * (`{state: ["already in completed state"]}`) to its next event or heartbeat.
 */
export async function cancelRun(deps: HttpApiDeps, res: ServerResponse, id: string): Promise<void> {
  const run = await findRun(deps, id);
  const result = await deps.lifecycle.finish(run, { state: 'cancelled', reason: 'cancel', errorType: 'CancelError', errorMessage: 'cancelled by request' });
  if (result !== 'finished') throw new HttpProblem(409, 'conflict', `run is already ${run.state}`, 'state');
  deps.logger.info({ runId: run.id }, 'run cancelled');
  sendJson(res, 200, runSummaryView(await findRun(deps, id)));
}

/**
 * Puts a dead letter back in its queue with one more attempt: the retry an
 * operator makes once the cause (a lost worker, a crash) is dealt with.
 */
export async function retryRun(deps: HttpApiDeps, res: ServerResponse, id: string): Promise<void> {
  const run = await findRun(deps, id);
  if (!(await deps.store.retryDeadLetter(run.id, Date.now()))) throw new HttpProblem(409, 'conflict', `run is ${run.state}, not a dead letter`, 'dead_letter');
  deps.logger.info({ runId: run.id, queue: run.queue }, 'dead letter retried');
  deps.lifecycle.enqueued(run.queue);
  sendJson(res, 200, runSummaryView(await findRun(deps, id)));
}
