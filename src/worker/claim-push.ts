/**
 * One `claim` push on `worker:queue`: the payload a lane's request becomes,
 * and the push itself, settled once by its reply, its timeout, the lane's
 * abort, or the connection dropping (through `pending`).
 */
import type { Channel, Push } from 'phoenix';
import type { Logger } from 'pino';
import type { ClaimRequest } from '../lanes/claimer.ts';
import { CAPABILITY_MEMORY_CLAIMS, CLAIM } from '../protocol/events.ts';
import type { ClaimPayload, ClaimedRun } from '../protocol/messages.ts';
import { ClaimInterruptedError, PushRejectedError, PushTimeoutError } from './channel-errors.ts';
import { parseClaimedRuns } from './claim-reply.ts';
import type { ServerFeatures } from './server-features.ts';

/**
 * How long a claim may wait at a server that offered `held_claims` (at most
 * half the claim timeout): long enough that an idle lane sends a claim every
 * 20 s, short enough that a server which lost track of it costs little.
 */
export const CLAIM_HOLD_MS = 20_000;

export interface ClaimPush {
  channel: Channel;
  request: ClaimRequest;
  /** `hold_ms` to send (`held_claims`); 0 sends none. */
  holdMs: number;
  workerName: string | null;
  features: ServerFeatures;
  timeoutMs: number;
  signal: AbortSignal;
  /** The interrupts of the claims in flight: the connection calls them when the channel drops. */
  pending: Set<(error: Error) => void>;
  logger: Logger;
}

/** Pushes one claim and resolves with the runs of its reply. */
export function pushClaim(push: ClaimPush): Promise<readonly ClaimedRun[]> {
  const { channel, request, signal, pending, logger, timeoutMs } = push;
  const payload: ClaimPayload = { demand: request.demand, worker_name: push.workerName, queues: [...request.queues] };
  // Memory fields only to a server that offered memory_claims: Lightning keeps the plain claim.
  if (request.memory !== undefined && push.features.capabilities.has(CAPABILITY_MEMORY_CLAIMS)) {
    payload.max_run_memory_mb = request.memory.freeMb;
    payload.lane_memory_mb = request.memory.laneMb;
    payload.default_run_memory_mb = request.memory.defaultRunMb;
  }
  if (push.holdMs > 0) payload.hold_ms = push.holdMs;
  return new Promise((resolve, reject) => {
    let settled = false;
    let sent: Push | null = null;
    const finish = (action: () => void): void => {
      if (settled) return;
      settled = true;
      pending.delete(interrupt);
      signal.removeEventListener('abort', onAbort);
      action();
    };
    const interrupt = (error: Error): void =>
      finish(() => {
        // The reply will never be read: drop the push's timer (up to the claim timeout, an hour by default) and its reply hook.
        if (sent !== null) forget(sent);
        reject(error);
      });
    const onAbort = (): void => interrupt(new ClaimInterruptedError('claim aborted'));
    if (signal.aborted) return onAbort();
    pending.add(interrupt);
    signal.addEventListener('abort', onAbort, { once: true });
    sent = channel.push(CLAIM, payload, timeoutMs);
    sent
      .receive('ok', (response?: unknown) => finish(() => resolve(parseClaimedRuns(response, logger))))
      .receive('error', (response?: unknown) => finish(() => reject(new PushRejectedError(CLAIM, response))))
      .receive('timeout', () => {
        // The server may have claimed runs for a reply we will never read; its lease brings them back.
        logger.warn({ demand: request.demand, queues: request.queues }, 'claim timed out');
        finish(() => reject(new PushTimeoutError(CLAIM, timeoutMs)));
      });
  });
}

/** Stops waiting for a push's reply: phoenix's own (untyped) cleanup of a push, as when its reply arrives. */
export function forget(push: Push): void {
  const internals = push as unknown as { cancelRefEvent?: () => void; cancelTimeout?: () => void };
  internals.cancelRefEvent?.();
  internals.cancelTimeout?.();
}

/** Rejects the claims in flight: their replies can no longer arrive. */
export function interruptClaims(claims: Set<(error: Error) => void>, reason: string): void {
  const pending = [...claims];
  claims.clear();
  for (const interrupt of pending) interrupt(new ClaimInterruptedError(reason));
}
