/**
 * The JSON API (DESIGN.md, "Server JSON API") plus `/metrics`, `/livez` and
 * `/readyz`. Handlers are small functions over the store and the run
 * lifecycle; errors are `{error, field?, message}` with a 4xx status, and a
 * request that fails validation stores nothing.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { QUEUE_NAME_PATTERN, RUN_STATES } from '../protocol/index.ts';
import type { RunDetailView, RunState } from '../protocol/index.ts';
import { ApiTokens } from './api-auth.ts';
import type { DashboardRoutes } from './dashboard-routes.ts';
import { badQueueName, isRecord } from './field-errors.ts';
import { differingField } from './idempotent-submission.ts';
import { exceedsDepth, MAX_JSON_DEPTH } from './json-depth.ts';
import type { RunLifecycle } from './run-lifecycle.ts';
import type { RunRecord, Store } from './store/store.ts';
import { parseSubmission } from './run-submission.ts';
import { logView, runDetailView, runSummaryView } from './run-view.ts';
import { memoryWaitReason } from './memory-wait-reason.ts';
import type { ServerMetrics } from './server-metrics.ts';
import type { ResolvedServerOptions } from './server-options.ts';
import type { WorkerRegistry } from './worker-registry.ts';
import { StorageHealth, storageFailureOf } from './storage-health.ts';

export interface HttpApiDeps {
  store: Store;
  lifecycle: RunLifecycle;
  registry: WorkerRegistry;
  metrics: ServerMetrics;
  options: ResolvedServerOptions;
  logger: Logger;
  dashboard: DashboardRoutes;
  /** False while starting or stopping; `/readyz` answers 503 then. */
  isReady: () => boolean;
}

export const DEFAULT_LIST_LIMIT = 100;
export const MAX_LIST_LIMIT = 1000;

class HttpProblem extends Error {
  readonly status: number;
  readonly code: string;
  readonly field: string | undefined;
  constructor(status: number, code: string, message: string, field?: string) {
    super(message);
    this.status = status;
    this.code = code;
    this.field = field;
  }
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function readBody(req: IncomingMessage, maxBytes: number): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > maxBytes) {
      reject(new HttpProblem(413, 'payload_too_large', `body is larger than ${maxBytes} bytes`));
      req.resume();
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let failed = false;
    req.on('data', (chunk: Buffer) => {
      if (failed) return;
      size += chunk.length;
      if (size > maxBytes) {
        failed = true;
        reject(new HttpProblem(413, 'payload_too_large', `body is larger than ${maxBytes} bytes`));
        return;
      }
      chunks.push(chunk);
    });
    req.on('error', (error) => {
      if (!failed) reject(error);
      failed = true;
    });
    req.on('end', () => {
      if (failed) return;
      const text = Buffer.concat(chunks).toString('utf8');
      if (text.trim().length === 0) {
        resolve(undefined);
        return;
      }
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch {
        reject(new HttpProblem(400, 'invalid_json', 'body is not valid JSON', 'body'));
        return;
      }
      // Storing it means JSON.stringify, which overflows the stack on deep nesting: refuse it whole.
      if (exceedsDepth(parsed)) reject(new HttpProblem(422, 'validation', `is nested more than ${MAX_JSON_DEPTH} levels deep`, 'body'));
      else resolve(parsed);
    });
  });
}

function decodePathPart(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    throw new HttpProblem(400, 'validation', 'is not a valid percent-encoded path', 'path');
  }
}

/**
 * The only paths that answer without an API token, none holding run data:
 * health, metrics, and the dashboard's shell (the page and its two files),
 * which must load to show the sign-in; the dashboard reads everything else
 * from `/api` with the token.
 */
export const OPEN_PATHS: ReadonlySet<string> = new Set(['/livez', '/readyz', '/metrics', '/', '/dashboard.js', '/dashboard.css']);

/** True for a media type of `application/json`, with or without parameters (`; charset=utf-8`). */
function isJsonContentType(value: string | undefined): boolean {
  return value !== undefined && /^application\/json\s*(;|$)/i.test(value.trim());
}

export class HttpApi {
  readonly #deps: HttpApiDeps;
  readonly #tokens: ApiTokens;
  readonly #storage: StorageHealth;

  constructor(deps: HttpApiDeps) {
    this.#deps = deps;
    this.#tokens = new ApiTokens(deps.options.apiTokens);
    this.#storage = new StorageHealth(deps.logger);
  }

  /**
   * The doors of `/api/*`: a bearer token (401 otherwise, saying whether it
   * was missing or wrong), and a write with a body must say it is JSON (415):
   * a web page can send `text/plain` or a form cross-site without a CORS
   * preflight, never `application/json` or an `Authorization` header. No CORS
   * header is ever sent, so a browser shows no answer to another origin.
   */
  #guard(req: IncomingMessage, res: ServerResponse, method: string): void {
    const auth = this.#tokens.check(req.headers.authorization);
    if (!auth.ok) {
      res.setHeader('www-authenticate', `Bearer error="${auth.error === 'missing_token' ? 'invalid_request' : 'invalid_token'}"`);
      throw new HttpProblem(401, auth.error, auth.message, 'authorization');
    }
    if (method !== 'POST' && method !== 'PUT') return;
    const type = req.headers['content-type'];
    const hasBody = Number(req.headers['content-length'] ?? 0) > 0 || req.headers['transfer-encoding'] !== undefined;
    if ((type !== undefined || hasBody) && !isJsonContentType(type)) {
      throw new HttpProblem(415, 'unsupported_media_type', `must be application/json, got ${JSON.stringify(type ?? 'none')}`, 'content-type');
    }
  }

  /** Node `request` listener. Never throws; unexpected errors become 500. */
  handle(req: IncomingMessage, res: ServerResponse): void {
    const write = req.method === 'POST' || req.method === 'PUT';
    this.#route(req, res).then(() => {
      if (write && res.statusCode < 500) this.#storage.succeeded();
    }, (error: unknown) => {
      const storage = storageFailureOf(error);
      if (storage !== undefined) {
        this.#storage.failed(storage);
        if (!res.headersSent) sendJson(res, 503, { error: 'unavailable', message: this.#storage.problem ?? 'the database cannot be written' });
        return;
      }
      if (error instanceof HttpProblem) {
        const body: Record<string, unknown> = { error: error.code, message: error.message };
        if (error.field !== undefined) body['field'] = error.field;
        if (!res.headersSent) sendJson(res, error.status, body);
        return;
      }
      this.#deps.logger.error({ err: error, method: req.method, url: req.url }, 'request failed');
      if (!res.headersSent) sendJson(res, 500, { error: 'internal', message: 'internal server error' });
    });
  }

  async #route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const method = req.method ?? 'GET';
    // Closed unless named open, and checked on the raw path before anything is decoded: a caller
    // without a token learns nothing of the routes, and `/%61pi/runs` cannot slip past as another path.
    if (!OPEN_PATHS.has(url.pathname)) this.#guard(req, res, method);
    const parts = url.pathname.split('/').filter((part) => part.length > 0).map(decodePathPart);
    const route = `${method} /${parts.map((part, index) => (index >= 2 && index % 2 === 0 ? ':' : part)).join('/')}`;
    if (!this.#deps.store.isOpen && url.pathname !== '/livez') throw new HttpProblem(503, 'unavailable', 'server is stopping');
    switch (route) {
      case 'GET /livez':
        return sendJson(res, 200, { status: 'ok' });
      case 'GET /readyz':
        if (this.#storage.problem !== null) return sendJson(res, 503, { status: 'not ready', reason: this.#storage.problem });
        return this.#deps.isReady() && (await this.#deps.store.ping()) ? sendJson(res, 200, { status: 'ready' }) : sendJson(res, 503, { status: 'not ready' });
      case 'GET /metrics':
        return this.#metrics(res);
      case 'GET /':
        return this.#deps.dashboard.asset(res, 'html');
      case 'GET /dashboard.js':
        return this.#deps.dashboard.asset(res, 'js');
      case 'GET /dashboard.css':
        return this.#deps.dashboard.asset(res, 'css');
      case 'GET /api/dashboard':
        return this.#deps.dashboard.snapshot(res);
      case 'GET /api/events':
        if (!this.#deps.dashboard.events(req, res)) throw new HttpProblem(503, 'unavailable', 'the event stream is stopping or has too many listeners');
        return;
      case 'POST /api/runs':
        return this.#submit(req, res, url);
      case 'GET /api/runs':
        return this.#list(res, url);
      case 'GET /api/runs/:':
        return this.#show(res, parts[2] ?? '');
      case 'GET /api/runs/:/logs':
        return this.#logs(res, parts[2] ?? '');
      case 'POST /api/runs/:/cancel':
        return this.#cancel(res, parts[2] ?? '');
      case 'POST /api/runs/:/retry':
        return this.#retry(res, parts[2] ?? '');
      case 'GET /api/queues':
        return this.#queues(res);
      case 'POST /api/queues/:/suspend':
        return this.#suspend(res, parts[2] ?? '', true);
      case 'POST /api/queues/:/resume':
        return this.#suspend(res, parts[2] ?? '', false);
      case 'GET /api/workers':
        return this.#workers(res);
      case 'PUT /api/credentials/:':
        return this.#putCredential(req, res, parts[2] ?? '');
      default:
        throw new HttpProblem(404, 'not_found', `no route for ${method} ${url.pathname}`);
    }
  }

  async #metrics(res: ServerResponse): Promise<void> {
    const registry = this.#deps.metrics.registry;
    const text = await registry.metrics();
    res.writeHead(200, { 'content-type': registry.contentType });
    res.end(text);
  }

  async #submit(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const { store, lifecycle, options, logger } = this.#deps;
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
      const early = store.kind === 'sqlite' && (submission.notBefore === null || submission.notBefore <= now);
      if (early) lifecycle.announce(submission.queue);
      let inserted: RunRecord | undefined;
      try {
        inserted = await store.insertRun({
          id: randomUUID(),
          queue: submission.queue,
          priority: submission.priority,
          maxAttempts: submission.maxAttempts,
          idempotencyKey: submission.idempotencyKey,
          plan: submission.plan,
          inputJson: submission.inputJson,
          runTimeoutMs: submission.plan.options?.run_timeout_ms ?? options.runTimeoutMs,
          now,
          ...(submission.notBefore === null ? {} : { notBefore: submission.notBefore }),
        });
      } catch (error) {
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
      if (inserted !== undefined) {
        run = inserted;
        created = true;
        lifecycle.enqueued(run.queue, run.availableAt, early);
        logger.info({ runId: run.id, queue: run.queue }, 'run submitted');
      }
    }
    if (run === undefined) throw new HttpProblem(503, 'unavailable', 'the run could not be stored');
    const status = created ? 201 : 200;
    if (waitSeconds === undefined) {
      sendJson(res, status, { id: run.id, state: run.state, queue: run.queue });
      return;
    }
    const finished = await lifecycle.waitForEnd(run.id, waitSeconds * 1000);
    if (!finished) {
      const current = store.isOpen && this.#deps.isReady() ? await store.getRun(run.id) : undefined;
      if (!current) throw new HttpProblem(503, 'unavailable', 'server is stopping');
      sendJson(res, 504, { error: 'timeout', message: `run did not finish within ${waitSeconds} s`, run: runSummaryView(current) });
      return;
    }
    const webhook = finished.webhookResponse;
    if (webhook) {
      sendJson(res, webhook.status ?? status, webhook.body === undefined ? await this.#detail(finished) : webhook.body);
      return;
    }
    sendJson(res, status, await this.#detail(finished));
  }

  async #detail(run: RunRecord): Promise<RunDetailView> {
    const { store, registry } = this.#deps;
    const [steps, attempts] = await Promise.all([store.getSteps(run.id), store.getAttempts(run.id)]);
    return { ...runDetailView(run, steps, attempts), waiting_reason: memoryWaitReason(run, registry.list()) };
  }

  async #list(res: ServerResponse, url: URL): Promise<void> {
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
    const runs = await this.#deps.store.listRuns({
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

  async #findRun(id: string): Promise<RunRecord> {
    const run = await this.#deps.store.getRun(id);
    if (!run) throw new HttpProblem(404, 'not_found', 'no such run', 'id');
    return run;
  }

  async #show(res: ServerResponse, id: string): Promise<void> {
    sendJson(res, 200, await this.#detail(await this.#findRun(id)));
  }

  async #logs(res: ServerResponse, id: string): Promise<void> {
    const run = await this.#findRun(id);
    sendJson(res, 200, { logs: (await this.#deps.store.getLogs(run.id)).map(logView) });
  }

  /**
   * Cancels a run that has not ended. An available run never starts; a run in
   * flight is marked `cancelled` at once, and its worker is told by a
   * `run:cancel` push when it declared `run_cancel` (the lifecycle does it);
   * any other worker learns it from the error reply
   * (`{state: ["already in completed state"]}`) to its next event or heartbeat.
   */
  async #cancel(res: ServerResponse, id: string): Promise<void> {
    const run = await this.#findRun(id);
    const result = await this.#deps.lifecycle.finish(run, { state: 'cancelled', reason: 'cancel', errorType: 'CancelError', errorMessage: 'cancelled by request' });
    if (result !== 'finished') throw new HttpProblem(409, 'conflict', `run is already ${run.state}`, 'state');
    this.#deps.logger.info({ runId: run.id }, 'run cancelled');
    sendJson(res, 200, runSummaryView(await this.#findRun(id)));
  }

  /**
   * Puts a dead letter back in its queue with one more attempt: the retry an
   * operator makes once the cause (a lost worker, a crash) is dealt with.
   */
  async #retry(res: ServerResponse, id: string): Promise<void> {
    const run = await this.#findRun(id);
    if (!(await this.#deps.store.retryDeadLetter(run.id, Date.now()))) throw new HttpProblem(409, 'conflict', `run is ${run.state}, not a dead letter`, 'dead_letter');
    this.#deps.logger.info({ runId: run.id, queue: run.queue }, 'dead letter retried');
    this.#deps.lifecycle.enqueued(run.queue);
    sendJson(res, 200, runSummaryView(await this.#findRun(id)));
  }

  async #queues(res: ServerResponse): Promise<void> {
    const now = Date.now();
    const queues = (await this.#deps.store.queueStats()).map((stats) => ({
      name: stats.name,
      suspended: stats.suspended,
      counts: stats.counts,
      oldest_available_age_ms: stats.oldestAvailableAt === null ? null : Math.max(0, now - stats.oldestAvailableAt),
    }));
    sendJson(res, 200, { queues });
  }

  async #suspend(res: ServerResponse, name: string, suspended: boolean): Promise<void> {
    if (!QUEUE_NAME_PATTERN.test(name)) throw new HttpProblem(400, 'validation', badQueueName(name), 'name');
    await this.#deps.store.setQueueSuspended(name, suspended, Date.now());
    this.#deps.logger.info({ queue: name, suspended }, suspended ? 'queue suspended' : 'queue resumed');
    if (!suspended) this.#deps.lifecycle.enqueued(name);
    sendJson(res, 200, { name, suspended });
  }

  async #workers(res: ServerResponse): Promise<void> {
    const active = await this.#deps.store.activeRunsByWorker();
    const workers = this.#deps.registry.list().map((worker) => ({
      id: worker.workerId,
      connection_id: worker.connectionId,
      name: worker.name,
      capacity: worker.capacity,
      lanes: worker.laneList.map((lane) => ({ chain: lane.chain, slots: lane.slots })),
      lanes_memory_mb: worker.lanesMemoryMb,
      memory_ceiling_mb: worker.memoryCeilingMb,
      heartbeats: worker.heartbeats,
      connected_at: new Date(worker.connectedAt).toISOString(),
      active_runs: active.get(worker.workerId) ?? [],
    }));
    sendJson(res, 200, { workers });
  }

  async #putCredential(req: IncomingMessage, res: ServerResponse, id: string): Promise<void> {
    if (id.length === 0 || id.length > 255) throw new HttpProblem(400, 'validation', 'must be 1 to 255 characters', 'id');
    const body = await readBody(req, this.#deps.options.maxBodyBytes);
    if (!isRecord(body)) throw new HttpProblem(422, 'validation', 'must be a JSON object', 'body');
    await this.#deps.store.putCredential(id, JSON.stringify(body), Date.now());
    // The body is a secret: log the id only.
    this.#deps.logger.info({ credentialId: id }, 'credential stored');
    sendJson(res, 200, { id });
  }
}
