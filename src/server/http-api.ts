/**
 * The JSON API (DESIGN.md, "Server JSON API") plus `/metrics`, `/livez` and
 * `/readyz`: the token and content-type doors, routing, and turning errors
 * into answers. The handlers are small functions over the store and the run
 * lifecycle, one file per route group (`run-routes.ts`, `submit-route.ts`,
 * `queue-routes.ts`, `worker-routes.ts`, `credential-routes.ts`); errors are
 * `{error, field?, message}` with a 4xx status, and a request that fails
 * validation stores nothing.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ApiTokens } from './api-auth.ts';
import { putCredential } from './credential-routes.ts';
import type { HttpApiDeps } from './http-api-deps.ts';
import { sendJson } from './http-json.ts';
import { HttpProblem } from './http-problem.ts';
import { listQueues, suspendQueue } from './queue-routes.ts';
import { cancelRun, listRuns, retryRun, showRun, showRunLogs } from './run-routes.ts';
import { submitRun } from './submit-route.ts';
import { StorageHealth, storageFailureOf } from './storage-health.ts';
import { listWorkers } from './worker-routes.ts';

export type { HttpApiDeps } from './http-api-deps.ts';

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
        return submitRun(this.#deps, req, res, url);
      case 'GET /api/runs':
        return listRuns(this.#deps, res, url);
      case 'GET /api/runs/:':
        return showRun(this.#deps, res, parts[2] ?? '');
      case 'GET /api/runs/:/logs':
        return showRunLogs(this.#deps, res, parts[2] ?? '');
      case 'POST /api/runs/:/cancel':
        return cancelRun(this.#deps, res, parts[2] ?? '');
      case 'POST /api/runs/:/retry':
        return retryRun(this.#deps, res, parts[2] ?? '');
      case 'GET /api/queues':
        return listQueues(this.#deps, res);
      case 'POST /api/queues/:/suspend':
        return suspendQueue(this.#deps, res, parts[2] ?? '', true);
      case 'POST /api/queues/:/resume':
        return suspendQueue(this.#deps, res, parts[2] ?? '', false);
      case 'GET /api/workers':
        return listWorkers(this.#deps, res);
      case 'PUT /api/credentials/:':
        return putCredential(this.#deps, req, res, parts[2] ?? '');
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
}
