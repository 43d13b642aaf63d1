/**
 * `POST /api/runs`: validates and stores a run (or finds the one its
 * idempotency key already names), tells the workers, and with `?wait=`
 * answers with the finished run, its webhook response, or a 504.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { HttpApiDeps } from './http-api-deps.ts';
import { readBody, sendJson } from './http-json.ts';
import { HttpProblem } from './http-problem.ts';
import { differingField } from './idempotent-submission.ts';
import { runDetail } from './run-routes.ts';
import { storeAndHandOff } from './run-hand-off.ts';
import { parseSubmission } from './run-submission.ts';
import { runSummaryView } from './run-view.ts';
import type { RunRecord } from './store/store.ts';

export async function submitRun(deps: HttpApiDeps, req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
  const { store, lifecycle, options, logger } = deps;
  const waitParam = url.searchParams.get('wait');
  let waitSeconds: number | undefined;
  if (waitParam !== null) {
    waitSeconds = Number(waitParam);
    if (waitParam.trim() === '' || !Number.isFinite(waitSeconds) || waitSeconds <= 0 || waitSeconds > options.maxWaitSeconds) {
      throw new HttpProblem(400, 'validation', `must be a number of seconds in (0, ${options.maxWaitSeconds}]`, 'wait');
    }
  }
  const body = await readBody(req, options.maxBodyBytes);
  const parsed = parseSubmission(body, options.defaultMaxAttempts);
  if (!parsed.ok) throw new HttpProblem(422, 'validation', parsed.problem.message, parsed.problem.field);
  const { submission } = parsed;
  let run: RunRecord | undefined;
  let created = false;
  /** A held claim took it in its own insert's transaction (run-hand-off.ts): it is claimed already. */
  let handed = false;
  if (submission.idempotencyKey !== null) run = await store.getRunByIdempotencyKey(submission.idempotencyKey);
  const differs = run ? await differingField(store, run, submission) : undefined;
  if (run && differs) {
    sendJson(res, 409, { error: 'conflict', field: 'idempotency_key', message: `was used for run ${run.id} with a different ${differs}`, id: run.id });
    return;
  }
  if (!run) {
    const now = Date.now();
    // On SQLite, workers hear of the run before it is written: the insert is synchronous, so no
    // claim is read before it has returned, and the worker wakes up and sends its claim while the
    // insert runs. Should the insert fail, a claim finds nothing. On PostgreSQL the insert is a
    // round trip during which a claim may be served: workers hear of the run once it is stored.
    // On SQLite a run due now is also handed to a held claim in its insert's transaction, if one takes it.
    const early = store.kind === 'sqlite' && (submission.notBefore === null || submission.notBefore <= now);
    if (early) lifecycle.announce(submission.queue);
    let inserted: RunRecord | undefined;
    const runTimeoutMs = submission.plan.options?.run_timeout_ms ?? options.runTimeoutMs;
    // Its claim is a round trip away: an id whose token was signed in idle time spares the claim a signature.
    const id = deps.tokens.takeRunId({ runTimeoutMs, dueNow: submission.notBefore === null || submission.notBefore <= now });
    try {
      const input = { ...submission, id, runTimeoutMs, now };
      if (early) ({ run: inserted, handed } = await storeAndHandOff(store, (context) => lifecycle.handOff(context), input));
      else inserted = await store.insertRun(input);
    } catch (error) {
      deps.tokens.discard(id);
      // Another server on the database took the key between our read and our insert: answer as if it came first.
      const winner = submission.idempotencyKey === null ? undefined : await store.getRunByIdempotencyKey(submission.idempotencyKey);
      if (winner === undefined) throw error;
      const conflict = await differingField(store, winner, submission);
      if (conflict) {
        sendJson(res, 409, { error: 'conflict', field: 'idempotency_key', message: `was used for run ${winner.id} with a different ${conflict}`, id: winner.id });
        return;
      }
      run = winner;
    }
    // The claim's reply is on its way (a few promise turns): let it go out before this request's own work (its log, its
    // answer, a ?wait's read), so the worker is not kept waiting on them, and the claim is answered before the submission.
    if (handed) await new Promise((resolve) => setImmediate(resolve));
    if (inserted !== undefined) {
      run = inserted;
      created = true;
      if (!handed) lifecycle.enqueued(run.queue, run.availableAt, early);
      logger.info({ runId: run.id, queue: run.queue }, 'run submitted');
    }
  }
  if (run === undefined) throw new HttpProblem(503, 'unavailable', 'the run could not be stored');
  const status = created ? 201 : 200;
  if (waitSeconds === undefined) {
    sendJson(res, status, { id: run.id, state: handed ? 'claimed' : run.state, queue: run.queue });
    return;
  }
  const finished = await lifecycle.waitForEnd(run.id, waitSeconds * 1000);
  if (!finished) {
    const current = store.isOpen && deps.isReady() ? await store.getRun(run.id) : undefined;
    if (!current) throw new HttpProblem(503, 'unavailable', 'server is stopping');
    sendJson(res, 504, { error: 'timeout', message: `run did not finish within ${waitSeconds} s`, run: runSummaryView(current) });
    return;
  }
  const webhook = finished.webhookResponse;
  if (webhook) {
    sendJson(res, webhook.status ?? status, webhook.body === undefined ? await runDetail(deps, finished) : webhook.body);
    return;
  }
  sendJson(res, status, await runDetail(deps, finished));
}
