/**
 * A small typed client of the Lanes server's JSON API (docs/server.md), used
 * by `lanes submit`, `lanes dev` and the benchmarks, over node:http(s).
 */
import { request as httpRequest } from 'node:http';
import type { RequestOptions } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { RunState } from '../protocol/reasons.ts';
import { isTerminalState } from '../protocol/reasons.ts';
import { ApiError, ServerUnreachableError } from './api-error.ts';

export interface SubmitRunBody {
  queue?: string;
  plan: unknown;
  input?: unknown;
  priority?: number;
  idempotency_key?: string;
  max_attempts?: number;
}

export interface SubmittedRun {
  id: string;
  state: RunState;
  queue: string;
}

/** A run as `GET /api/runs/:id` returns it; only the fields the client relies on are typed. */
export interface RunRecord {
  id: string;
  queue: string;
  state: RunState;
  reason: string | null;
  error_type: string | null;
  error_message: string | null;
  created_at?: string | null;
  claimed_at?: string | null;
  started_at?: string | null;
  finished_at?: string | null;
  final_state?: unknown;
  [field: string]: unknown;
}

export interface LanesApiClientOptions {
  /** Sent as `Authorization: Bearer <token>` on every request (the server's `--api-token`). */
  apiToken?: string;
}

export class LanesApiClient {
  readonly baseUrl: string;
  readonly #authorization: string | undefined;

  constructor(baseUrl: string, options: LanesApiClientOptions = {}) {
    this.baseUrl = baseUrl.replace(/\/$/, '');
    this.#authorization = options.apiToken ? `Bearer ${options.apiToken}` : undefined;
  }

  async submitRun(body: SubmitRunBody, signal?: AbortSignal): Promise<SubmittedRun> {
    return this.#request<SubmittedRun>('POST', '/api/runs', body, 'submit run', signal);
  }

  async getRun(id: string, signal?: AbortSignal): Promise<RunRecord> {
    return this.#request<RunRecord>('GET', `/api/runs/${encodeURIComponent(id)}`, undefined, `get run ${id}`, signal);
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
      response = await this.#send(method, new URL(`${this.baseUrl}${path}`), body === undefined ? undefined : JSON.stringify(body), signal);
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

  #send(method: string, url: URL, body: string | undefined, signal: AbortSignal | undefined): Promise<{ status: number; text: string }> {
    const secure = url.protocol === 'https:';
    if (!secure && url.protocol !== 'http:') return Promise.reject(new Error(`unsupported protocol ${url.protocol}`));
    const headers: Record<string, string | number> = { accept: 'application/json' };
    if (this.#authorization !== undefined) headers['authorization'] = this.#authorization;
    if (body !== undefined) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = Buffer.byteLength(body);
    }
    const options: RequestOptions = { method, headers, ...(signal ? { signal } : {}) };
    return new Promise((resolve, reject) => {
      const req = (secure ? httpsRequest : httpRequest)(url, options, (res) => {
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
