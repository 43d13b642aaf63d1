/**
 * What the worker's connection says while it cannot get through: the server
 * is unreachable, refuses the token, has no worker endpoint, refuses or does
 * not answer the join. Each warning names the cause and when phoenix retries,
 * throttled (`throttled-warning.ts`) while the condition lasts, and repeats at
 * once after a join.
 */
import type { Logger } from 'pino';
import { ThrottledWarning } from './throttled-warning.ts';
import { closeDescription, describeSocketError } from './socket-problems.ts';

export class ConnectionWarnings {
  readonly #warnings: ThrottledWarning;
  /** Why the last connection attempt failed, until the next close reports it. */
  #lastSocketError: string | null = null;
  /** The delays phoenix last chose, for the warnings ("retrying in …"). */
  #nextReconnectMs = 0;
  #nextRejoinMs = 0;

  constructor(logger: Logger, everyMs: number | undefined) {
    this.#warnings = new ThrottledWarning(logger, everyMs === undefined ? {} : { everyMs });
  }

  /** Phoenix will reconnect after `ms`; returns it (phoenix's `reconnectAfterMs` hook). */
  reconnectIn(ms: number): number {
    return (this.#nextReconnectMs = ms);
  }

  /** Phoenix will rejoin after `ms`; returns it (phoenix's `rejoinAfterMs` hook). */
  rejoinIn(ms: number): number {
    return (this.#nextRejoinMs = ms);
  }

  /** The socket failed: its cause is told when the close that follows is. */
  socketError(error: unknown): void {
    this.#lastSocketError = describeSocketError(error);
  }

  /** The socket could not connect to `server`, or closed before joining; `nextServer` is the one tried next. */
  unreachable(event: unknown, server: string, nextServer: string): void {
    const cause = this.#lastSocketError ?? closeDescription(event);
    this.#lastSocketError = null;
    const fields = { server, cause, retryInMs: this.#nextReconnectMs, nextServer };
    // `ws` reports a refused upgrade as "Unexpected server response: 401"; the Lanes server and Lightning answer a bad token so.
    if (/\b(401|403)\b/.test(cause)) this.#warnings.warn(fields, 'the server refused the worker token: check WORKER_SECRET');
    else if (/\b404\b/.test(cause)) this.#warnings.warn(fields, 'no worker endpoint at this URL: check WORKER_LIGHTNING_SERVICE_URL (it ends in /worker)');
    else this.#warnings.warn(fields, 'cannot reach the server; retrying');
  }

  /** The server refused the join for a reason a retry may fix. */
  joinRefused(reason: string): void {
    this.#warnings.warn({ reason, retryInMs: this.#nextRejoinMs }, 'worker:queue join refused; retrying');
  }

  joinTimedOut(timeoutMs: number): void {
    this.#warnings.warn({ timeoutMs, retryInMs: this.#nextRejoinMs }, 'worker:queue join timed out; retrying');
  }

  /** Joined: the conditions are over, and the next occurrence of each is logged at once. */
  joined(): void {
    this.#warnings.reset();
    this.#lastSocketError = null;
  }
}
