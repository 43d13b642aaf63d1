/**
 * A small typed client of the Lanes server's JSON API (docs/server.md), used
 * by `lanes submit`, `lanes dev` and the benchmarks, over node:http(s).
 */
import { request as httpRequest } from 'node:http';
import type { RequestOptions } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { urlToHttpOptions } from 'node:url';
import { isTerminalState, runDetailViewShape, submissionProblem, submittedRunViewShape } from '../protocol/index.ts';
import type { RunDetailView, SubmissionBody, SubmittedRunView, WireShape } from '../protocol/index.ts';
import { ApiError, InvalidRequestError, ServerUnreachableError, UnexpectedResponseError } from './api-error.ts';

/**
 * A `POST /api/runs` body (`SubmissionBodySchema`). The plan is typed loosely
 * (a workflow file's JSON): the client checks the whole body before sending,
 * with the server's own schema and graph rules.
 */
export type SubmitRunBody = Omit<SubmissionBody, 'plan'> & { plan: unknown };

/** The answer to a submission (`SubmittedRunViewSchema`). */
export type SubmittedRun = SubmittedRunView;

/** A run as `GET /api/runs/:id` returns it (`RunDetailViewSchema`), or as a `?wait` submission answers: its fields are read as they come. */
export type RunRecord = Pick<RunDetailView, 'id' | 'queue' | 'state' | 'reason' | 'error_type' | 'error_message'> & Partial<Omit<RunDetailView, 'plan'>> & Record<string, unknown>;

export interface LanesApiClientOptions {
  /** Sent as `Authorization: Bearer <token>` on every request (the server's `--api-token`). */
  apiToken?: string;
}

/** Where requests go: the base URL as request options, read once; or why it cannot be used. */
type Target = { ok: true; secure: boolean; options: RequestOptions; prefix: string } | { ok: false; error: Error };

export class LanesApiClient {
  readonly baseUrl: string;
  readonly #authorization: string | undefined;
  #target: Target | undefined;

  constructor(baseUrl: string, options: LanesApiClientOptions = {}) {
    this.baseUrl = baseUrl.replace(/\/$/, '');
    this.#authorization = options.apiToken ? `Bearer ${options.apiToken}` : undefined;
  }

  /** Submits a run; a body the server would refuse is refused here first (`InvalidRequestError`, naming the field). */
  async submitRun(body: SubmitRunBody, signal?: AbortSignal): Promise<SubmittedRun> {
    checkSubmission(body);
    return expect(submittedRunViewShape, await this.#request<unknown>('POST', '/api/runs', body, 'submit run', signal), 'submit run');
  }

  async getRun(id: string, signal?: AbortSignal): Promise<RunRecord> {
    return expect(runDetailViewShape, await this.#request<unknown>('GET', `/api/runs/${encodeURIComponent(id)}`, undefined, `get run ${id}`, signal), `get run ${id}`);
  }

  async listRuns(query: Record<string, string>, signal?: AbortSignal): Promise<unknown> {
    const search = new URLSearchParams(query).toString();
    return this.#request<unknown>('GET', `/api/runs${search ? `?${search}` : ''}`, undefined, 'list runs', signal);
  }

  /** Polls a run until it reaches a terminal state; rejects on abort. */
  async waitForRun(id: string, options: { pollMs?: number; signal?: AbortSignal } = {}): Promise<RunRecord> {
    const pollMs = options.pollMs ?? 200;
    const { signal } = options;
    for (;;) {
      const run = await this.getRun(id, signal);
      if (isTerminalState(run.state)) return run;
      await new Promise<void>((resolve, reject) => {
        const onAbort = (): void => {
          clearTimeout(timer);
          reject(signal?.reason);
        };
        const timer = setTimeout(() => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        }, pollMs);
        signal?.addEventListener('abort', onAbort, { once: true });
      });
    }
  }

  /**
   * Submits a run and holds the request open until it ends (`POST
   * /api/runs?wait=N`, at most the server's `maxWaitSeconds`): one request
   * instead of a submit and polls. Resolves with the finished run (or with the
   * webhook response its plan set); rejects with an `ApiError` 504 holding
   * the run's summary when it has not ended within `waitSeconds`.
   */
  async submitAndWait(body: SubmitRunBody, waitSeconds: number, signal?: AbortSignal): Promise<RunRecord> {
    checkSubmission(body);
    // Not checked as a run: a plan may answer with its own webhook response.
    return this.#request<RunRecord>('POST', `/api/runs?wait=${waitSeconds}`, body, 'submit run', signal);
  }

  /*
   * node:http rather than fetch: on a small machine fetch spends about 0.5 ms
   * more before the request reaches the socket (measured side by side), and
   * a submission is on the path to the run's start. The global agents keep
   * connections alive (Node 24's default), and idle ones do not hold the
   * process open.
   */
  async #request<T>(method: string, path: string, body: unknown, what: string, signal?: AbortSignal): Promise<T> {
    signal?.throwIfAborted();
    let response: { status: number; text: string };
    try {
      response = await this.#send(method, path, body === undefined ? undefined : JSON.stringify(body), signal);
    } catch (error) {
      if (signal?.aborted) throw signal.reason;
      throw new ServerUnreachableError(this.baseUrl, error);
    }
    let parsed: unknown = response.text;
    try {
      parsed = response.text.length > 0 ? JSON.parse(response.text) : null;
    } catch {
      // Not JSON: keep the text for the error message.
    }
    if (response.status < 200 || response.status >= 300) throw new ApiError(response.status, parsed, what);
    return parsed as T;
  }

  /**
   * The base URL as request options, parsed once: a `URL` per request, and
   * node:http turning it back into options, cost about 0.2 ms of a cold
   * submission (measured side by side).
   */
  #targetOf(): Target {
    if (this.#target !== undefined) return this.#target;
    try {
      const url = new URL(this.baseUrl);
      const secure = url.protocol === 'https:';
      if (!secure && url.protocol !== 'http:') throw new Error(`unsupported protocol ${url.protocol}`);
      const { protocol, hostname, port, auth } = urlToHttpOptions(url);
      const options: RequestOptions = { protocol, hostname, ...(port === undefined ? {} : { port }), ...(auth === undefined ? {} : { auth }) };
      this.#target = { ok: true, secure, options, prefix: url.pathname === '/' ? '' : url.pathname };
    } catch (error) {
      this.#target = { ok: false, error: error instanceof Error ? error : new Error(String(error)) };
    }
    return this.#target;
  }

  #send(method: string, path: string, body: string | undefined, signal: AbortSignal | undefined): Promise<{ status: number; text: string }> {
    const target = this.#targetOf();
    if (!target.ok) return Promise.reject(target.error);
    const headers: Record<string, string | number> = { accept: 'application/json' };
    if (this.#authorization !== undefined) headers['authorization'] = this.#authorization;
    if (body !== undefined) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = Buffer.byteLength(body);
    }
    const options: RequestOptions = { ...target.options, path: `${target.prefix}${path}`, method, headers, ...(signal ? { signal } : {}) };
    return new Promise((resolve, reject) => {
      const req = (target.secure ? httpsRequest : httpRequest)(options, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('error', reject);
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
      });
      req.on('error', reject);
      req.end(body);
    });
  }
}

function checkSubmission(body: unknown): void {
  const problem = submissionProblem(body, Date.now());
  if (problem !== undefined) throw new InvalidRequestError(problem.field, problem.message);
}

/** A response checked with the API's own schema; one that does not fit names its first wrong field. */
function expect<T>(shape: WireShape<T>, body: unknown, what: string): T & Record<string, unknown> {
  const problem = shape.firstProblem(body);
  if (problem !== undefined) throw new UnexpectedResponseError(what, problem.field, problem.message);
  return body as T & Record<string, unknown>;
}
