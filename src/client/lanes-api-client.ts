/**
 * A small typed client of the Lanes server's JSON API (docs/server.md), used
 * by `lanes submit`, `lanes dev` and the benchmarks. It speaks plain `fetch`.
 */
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

export class LanesApiClient {
  readonly baseUrl: string;

  constructor(baseUrl: string) {
    this.baseUrl = baseUrl.replace(/\/$/, '');
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
    for (;;) {
      const run = await this.getRun(id, options.signal);
      if (isTerminalState(run.state)) return run;
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(resolve, pollMs);
        options.signal?.addEventListener('abort', () => {
          clearTimeout(timer);
          reject(options.signal?.reason);
        }, { once: true });
      });
    }
  }

  async #request<T>(method: string, path: string, body: unknown, what: string, signal?: AbortSignal): Promise<T> {
    let response: Response;
    try {
      response = await fetch(`${this.baseUrl}${path}`, {
        method,
        ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
        ...(signal ? { signal } : {}),
      });
    } catch (error) {
      if (signal?.aborted) throw error;
      throw new ServerUnreachableError(this.baseUrl, error);
    }
    const text = await response.text();
    let parsed: unknown = text;
    try {
      parsed = text.length > 0 ? JSON.parse(text) : null;
    } catch {
      // Not JSON: keep the text for the error message.
    }
    if (!response.ok) throw new ApiError(response.status, parsed, what);
    return parsed as T;
  }
}
