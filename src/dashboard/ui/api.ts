/**
 * The dashboard's side of the JSON API: the token (kept in sessionStorage, so
 * it lives as long as the tab and is sent as a bearer header, never in a URL),
 * requests, and the event stream read with `fetch` so that it carries the same
 * header (an `EventSource` cannot).
 */
import type { DashboardSnapshot } from '../../protocol/dashboard.ts';

const TOKEN_KEY = 'lanes.token';

export class ApiError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

export function token(): string | null {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function signIn(value: string): void {
  sessionStorage.setItem(TOKEN_KEY, value);
}

export function signOut(): void {
  sessionStorage.removeItem(TOKEN_KEY);
}

/**
 * A link `…/#token=…` (what `npm start` prints) signs the tab in: the token is
 * stored and taken out of the address bar and history. A fragment never
 * reaches the server, its logs or a proxy.
 */
export function takeTokenFromUrl(): void {
  const params = new URLSearchParams(location.hash.slice(1));
  const value = params.get('token');
  if (value === null) return;
  signIn(value);
  history.replaceState(null, '', `${location.pathname}${location.search}#/`);
}

function headers(extra: Record<string, string> = {}): Record<string, string> {
  const value = token();
  return value === null ? extra : { ...extra, authorization: `Bearer ${value}` };
}

async function failure(res: Response): Promise<ApiError> {
  let message = `${res.status} ${res.statusText}`;
  try {
    const body = (await res.json()) as { message?: unknown; field?: unknown };
    if (typeof body.message === 'string') message = typeof body.field === 'string' ? `${body.field}: ${body.message}` : body.message;
  } catch {
    // Not JSON: the status line says enough.
  }
  return new ApiError(res.status, message);
}

export async function getJson<T>(path: string): Promise<T> {
  const res = await fetch(path, { headers: headers(), cache: 'no-store' });
  if (!res.ok) throw await failure(res);
  return (await res.json()) as T;
}

export async function postJson<T>(path: string, body: unknown = {}): Promise<T> {
  const res = await fetch(path, { method: 'POST', headers: headers({ 'content-type': 'application/json' }), body: JSON.stringify(body) });
  if (!res.ok) throw await failure(res);
  return (await res.json()) as T;
}

export interface StreamHandlers {
  snapshot: (snapshot: DashboardSnapshot) => void;
  status: (status: 'live' | 'reconnecting' | 'unauthorized') => void;
}

/**
 * Reads `GET /api/events` until `signal` aborts, reconnecting after a drop
 * (1 s, doubling to 10 s). A 401 stops it: the page asks for a token.
 */
export async function followEvents(handlers: StreamHandlers, signal: AbortSignal): Promise<void> {
  let delayMs = 1000;
  while (!signal.aborted) {
    try {
      const res = await fetch('/api/events', { headers: headers({ accept: 'text/event-stream' }), signal, cache: 'no-store' });
      if (res.status === 401) {
        handlers.status('unauthorized');
        return;
      }
      if (!res.ok || res.body === null) throw await failure(res);
      handlers.status('live');
      delayMs = 1000;
      await readEvents(res.body, (event, data) => {
        if (event === 'snapshot') handlers.snapshot(JSON.parse(data) as DashboardSnapshot);
      });
    } catch {
      if (signal.aborted) return;
    }
    handlers.status('reconnecting');
    await new Promise((resolve) => setTimeout(resolve, delayMs));
    delayMs = Math.min(delayMs * 2, 10_000);
  }
}

/** Splits a text/event-stream body into (event, data) pairs. */
async function readEvents(body: ReadableStream<Uint8Array>, onEvent: (event: string, data: string) => void): Promise<void> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    let end = buffer.indexOf('\n\n');
    while (end >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let event = 'message';
      const data: string[] = [];
      for (const line of block.split('\n')) {
        if (line.startsWith('event:')) event = line.slice(6).trim();
        else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
      }
      if (data.length > 0) onEvent(event, data.join('\n'));
      end = buffer.indexOf('\n\n');
    }
  }
}
