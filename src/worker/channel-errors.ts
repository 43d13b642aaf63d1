/**
 * Why a push on a channel did not get an `ok` reply. Kept together because
 * the worker treats them as one family: a timeout may be resent (only under
 * `idempotent_events`), a rejection never is, and an interruption means the
 * connection went away under the push.
 */
import { LanesError } from '../errors/lanes-error.ts';

/** No reply within the timeout. Whether the server acted on the push is unknown. */
export class PushTimeoutError extends LanesError {
  readonly event: string;
  constructor(event: string, timeoutMs: number) {
    super('PUSH_TIMEOUT', `no reply to ${event} within ${timeoutMs} ms`);
    this.event = event;
  }
}

/**
 * The channel errored (its socket dropped) while the push waited for its
 * reply: the reply is lost, whether or not the server acted on the push.
 */
export class PushLostError extends LanesError {
  readonly event: string;
  constructor(event: string) {
    super('PUSH_LOST', `the connection dropped while ${event} waited for its reply`);
    this.event = event;
  }
}

/** The server replied `error`; `response` is its error body (`{field: [messages]}` on run channels). */
export class PushRejectedError extends LanesError {
  readonly event: string;
  readonly response: unknown;
  constructor(event: string, response: unknown) {
    super('PUSH_REJECTED', `${event} rejected: ${safeJson(response)}`);
    this.event = event;
    this.response = response;
  }
}

/** The worker is not connected to the queue channel: nothing can be claimed now. */
export class NotConnectedError extends LanesError {
  constructor() {
    super('NOT_CONNECTED', 'not connected to worker:queue');
  }
}

/** The connection dropped while a claim was waiting for its reply. */
export class ClaimInterruptedError extends LanesError {
  constructor(reason: string) {
    super('CLAIM_INTERRUPTED', `claim interrupted: ${reason}`);
  }
}

function safeJson(value: unknown): string {
  try {
    const text = JSON.stringify(value);
    return text === undefined ? String(value) : text.slice(0, 500);
  } catch {
    return String(value);
  }
}

/** A run's channel was never joined: its deadline passed (the run is the server's again) or the worker stopped. */
export class JoinAbandonedError extends LanesError {
  constructor(reason: string) {
    super('RUN_JOIN_ABANDONED', `run channel join abandoned: ${reason}`);
  }
}
