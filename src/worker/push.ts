/**
 * One push on a phoenix channel turned into a promise: resolves with the `ok`
 * response, rejects with `PushRejectedError` or `PushTimeoutError`. The
 * phoenix client drops a reply that arrives after the timeout, so a timeout
 * really means "unknown": callers decide whether resending is safe.
 */
import type { Channel } from 'phoenix';
import { PushLostError, PushRejectedError, PushTimeoutError } from './channel-errors.ts';

/** Reads (`fetch:plan`, `fetch:dataclip`) are sent this many times at most before a timeout is final. */
export const READ_SENDS = 3;

/**
 * A read, resent after a timeout: a read changes nothing, so sending it again
 * is always safe. Its reply is lost when the connection drops while it is in
 * flight (the server was killed, the worker moves to another one); the resend
 * goes out once the channel has rejoined.
 */
export async function readWithResend(channel: Channel, event: string, payload: object, timeoutMs: number): Promise<unknown> {
  for (let send = 1; ; send += 1) {
    try {
      return await pushAndWait(channel, event, payload, timeoutMs);
    } catch (error) {
      if (!(error instanceof PushTimeoutError) || send >= READ_SENDS) throw error;
    }
  }
}

/**
 * Pushes and waits for the reply. With `lost`, a promise that settles when
 * the channel errors (its socket dropped, channel-drops.ts), a push still
 * waiting then rejects at once with `PushLostError`, not after its timeout:
 * the reply cannot come any more.
 */
export function pushAndWait(channel: Channel, event: string, payload: object, timeoutMs: number, lost?: Promise<void>): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const push = channel
      .push(event, payload, timeoutMs)
      .receive('ok', (response?: unknown) => resolve(response))
      .receive('error', (response?: unknown) => reject(new PushRejectedError(event, response)))
      .receive('timeout', () => reject(new PushTimeoutError(event, timeoutMs)));
    void lost?.then(() => {
      // The client would keep its timer (and its wait for a reply that cannot come) until the timeout.
      const pending = push as unknown as { cancelTimeout?: () => void; cancelRefEvent?: () => void };
      pending.cancelTimeout?.();
      pending.cancelRefEvent?.();
      reject(new PushLostError(event));
    });
  });
}
