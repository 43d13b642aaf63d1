/**
 * Joining a claimed run's channel (`run:<id>`), for as long as the run is
 * still this worker's.
 *
 * Once the claim reply is read, the run is the worker's to report: with
 * `claim_plans` it is already executing. A join that fails for a reason that
 * can pass is therefore not the end of it: a join that times out (a slow
 * server, a server that died with the join unanswered) or is refused for now
 * (`unavailable` while the server shuts down, `internal error` while its
 * database is away) is made again by phoenix, on this connection or, after a
 * failover, on the next server's, until one is answered `ok`. Only two
 * things end the wait without a join:
 *
 * - the server's final word: `unauthorized` (this token no longer opens the
 *   run: another attempt holds it, the token expired) or `not_found`;
 * - the run's deadline (`runJoinDeadline`): past it the run is the server's
 *   again, lost or given to another worker, and executing it further could
 *   run it twice;
 *
 * A stopping worker (`signal`: the shutdown timeout passed, or the run was
 * cancelled) gives the join one more push timeout, time enough to report the
 * run's end to a server that is there, and no longer: a stop never waits out
 * a lease. The run's events wait in its reporter meanwhile; none is dropped
 * while the join can still come.
 */
import type { Channel } from 'phoenix';
import type { Logger } from 'pino';
import { CAPABILITY_RUN_HEARTBEAT } from '../protocol/events.ts';
import { readIssuedRunToken } from '../protocol/tokens.ts';
import { JoinAbandonedError, PushRejectedError } from './channel-errors.ts';
import type { ServerFeatures } from './server-features.ts';

/** Join refusals that no rejoin can turn: the server knows the run and will not let this token in. */
const FINAL_JOIN_REFUSALS: ReadonlySet<string> = new Set(['unauthorized', 'not_found']);

export interface RunJoinOptions {
  /** The timeout of each join push. */
  timeoutMs: number;
  /** Epoch ms after which the run is no longer this worker's (`runJoinDeadline`). */
  deadline: number;
  /** Aborted when the worker stops (or the run is cancelled): wait one more `timeoutMs` at most. */
  signal?: AbortSignal;
  logger: Logger;
}

/**
 * The last moment a claimed run's channel may be joined, in epoch ms. With
 * `run_heartbeat` the server leases a run for `lease_ms` from its claim and
 * takes it back when no sign of life came (a join renews the lease): the
 * deadline is that lease, counted from `claimedAt` (the reply's arrival, a
 * little after the server's claim). Otherwise (Lightning) the run is the
 * worker's until its token expires (claim + run timeout + grace).
 */
export function runJoinDeadline(token: string, features: ServerFeatures, claimedAt: number, fallbackMs: number): number {
  if (features.capabilities.has(CAPABILITY_RUN_HEARTBEAT) && features.leaseMs !== null) return claimedAt + features.leaseMs;
  try {
    return readIssuedRunToken(token).expiresAtSeconds * 1000;
  } catch {
    // An unreadable or expired token: the server will refuse it; wait no longer than one push.
    return claimedAt + fallbackMs;
  }
}

/** Whether a join's `error` reply is the server's final word on the run. */
export function isFinalJoinRefusal(response: unknown): boolean {
  const reason = typeof response === 'object' && response !== null ? (response as { reason?: unknown }).reason : undefined;
  return typeof reason === 'string' && FINAL_JOIN_REFUSALS.has(reason);
}

/**
 * Joins `channel` (once: phoenix rejoins it after a timeout, a passing
 * refusal or a reconnect). Resolves on the first `ok`; rejects with
 * `PushRejectedError` on a final refusal, `JoinAbandonedError` at the
 * deadline (or one push timeout after the abort). The caller leaves the
 * channel when it rejects.
 */
export function joinRunChannel(channel: Channel, options: RunJoinOptions): Promise<void> {
  const { signal, logger } = options;
  return new Promise((resolve, reject) => {
    let settled = false;
    let retries = 0;
    const finish = (error: Error | null): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      if (error === null) resolve();
      else reject(error);
    };
    // Phoenix calls a join's hooks again on every rejoin: a passing failure is noted, the next answer awaited.
    const again = (cause: string, response?: unknown): void => {
      retries += 1;
      // Once at warn: a server away for a while would otherwise log a line per rejoin.
      if (retries === 1) logger.warn({ cause, response }, 'run channel join failed for now; rejoining');
      else logger.debug({ cause, response, retries }, 'run channel join failed for now; rejoining');
    };
    const giveUpAt = (deadline: number, reason: string): NodeJS.Timeout =>
      setTimeout(() => finish(new JoinAbandonedError(`${reason} (${retries} retries)`)), Math.max(0, deadline - Date.now()));
    let timer = giveUpAt(options.deadline, "not joined before the run's lease or token ran out");
    const onAbort = (): void => {
      if (settled || options.deadline <= Date.now() + options.timeoutMs) return;
      clearTimeout(timer);
      timer = giveUpAt(Date.now() + options.timeoutMs, 'not joined while the worker stopped');
    };
    if (signal?.aborted === true) onAbort();
    else signal?.addEventListener('abort', onAbort, { once: true });
    channel
      .join(options.timeoutMs)
      .receive('ok', () => finish(null))
      .receive('error', (response?: unknown) => {
        if (isFinalJoinRefusal(response)) finish(new PushRejectedError('phx_join', response));
        else again('refused', response);
      })
      .receive('timeout', () => again('timeout'));
  });
}
