/**
 * One push on a phoenix channel turned into a promise: resolves with the `ok`
 * response, rejects with `PushRejectedError` or `PushTimeoutError`. The
 * phoenix client drops a reply that arrives after the timeout, so a timeout
 * really means "unknown": callers decide whether resending is safe.
 */
import type { Channel } from 'phoenix';
import { PushRejectedError, PushTimeoutError } from './channel-errors.ts';

export function pushAndWait(channel: Channel, event: string, payload: object, timeoutMs: number): Promise<unknown> {
  return new Promise((resolve, reject) => {
    channel
      .push(event, payload, timeoutMs)
      .receive('ok', (response?: unknown) => resolve(response))
      .receive('error', (response?: unknown) => reject(new PushRejectedError(event, response)))
      .receive('timeout', () => reject(new PushTimeoutError(event, timeoutMs)));
  });
}
