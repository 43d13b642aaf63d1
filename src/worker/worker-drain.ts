/**
 * The graceful half of a worker's stop: its lanes stop claiming (the claims
 * in flight are awaited so that their runs start), then its runs finish on
 * their own until the shutdown timeout, and those still running are killed
 * (reported `kill`, `ShutdownError`). A forced stop (`force` aborted, now or
 * during the drain) cuts each wait short.
 */
import type { Logger } from 'pino';
import type { Workloop } from '../lanes/workloop.ts';
import { waitUntil } from './wait-until.ts';
import type { WorkerRuns } from './worker-runs.ts';

export interface WorkerDrain {
  lanes: readonly Workloop[];
  runs: WorkerRuns;
  shutdownTimeoutMs: number;
  force: AbortSignal;
  logger: Logger;
  /** Asks the server to answer the claims it holds (`held_claims`) now; called once the lanes stopped claiming. */
  releaseClaims?: () => Promise<void>;
}

export async function drainWorker(drain: WorkerDrain): Promise<void> {
  const { lanes, runs, shutdownTimeoutMs, force, logger } = drain;
  // 1. No new claims; claims in flight are awaited so their runs start (force abandons them). A claim
  //    the server does not answer within the shutdown timeout is given up: the server's lease brings
  //    back any run it handed out in that reply.
  const lanesStopped = Promise.all(lanes.map((lane) => lane.stop({ force: force.aborted })));
  // No lane sends a claim after stop(): a claim the server holds for one is answered now (its runs, if it found some, start).
  const released = drain.releaseClaims?.() ?? Promise.resolve();
  const claimsSettled = await waitUntil(() => Promise.all([lanesStopped, released]).then(() => undefined), shutdownTimeoutMs, force);
  if (!claimsSettled) {
    if (!force.aborted) logger.warn({ shutdownTimeoutMs }, 'claim unanswered at shutdown; giving it up');
    await Promise.all(lanes.map((lane) => lane.stop({ force: true })));
  }

  // 2. Runs finish on their own until the shutdown timeout, or until a forced stop.
  const allRunsDone = (): Promise<void> =>
    Promise.all([...lanes.map((lane) => lane.whenIdle()), runs.whenEnded()]).then(() => {
      // A backlog run may have started while we waited: wait for it too.
      if (runs.size > 0) return allRunsDone();
      return undefined;
    });
  const finished = await waitUntil(allRunsDone, shutdownTimeoutMs, force);
  if (!finished) {
    runs.killAll();
    // Reports of killed runs are bounded by the message timeout of each push; a forced stop does not wait.
    if (!force.aborted) await waitUntil(allRunsDone, Number.POSITIVE_INFINITY, force);
  }
}
