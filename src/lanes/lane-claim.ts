/**
 * Sending one claim for a lane: the request (its demand and, when the lane's
 * memory is bounded, that memory), the slots and memory promised to it while
 * it is in flight, and the `ClaimSettled` report once it settles. What the
 * lane does next (accept the runs, back off, claim again) is the claim
 * cycle's, in `workloop.ts`.
 */
import type { Logger } from 'pino';
import { LanesError } from '../errors/lanes-error.ts';
import type { ClaimedRun } from '../protocol/messages.ts';
import { ClaimError } from './claim-errors.ts';
import type { ClaimRequest, ClaimSettled, Claimer } from './claimer.ts';
import type { LaneMemory } from './lane-memory.ts';
import type { LaneSpec } from './parse-workloops.ts';
import type { LaneClaim } from './workloop-state.ts';

/** What a lane's claims are sent with; fixed for the lane's life. */
export interface LaneClaimSender {
  spec: Readonly<LaneSpec>;
  claimer: Claimer;
  memory: LaneMemory | undefined;
  /** Aborted only by a forced stop: the claim in flight is given up. */
  signal: AbortSignal;
  logger: Logger;
  /** Called after every claim; a throw is logged and ignored. */
  onClaimSettled: ((event: ClaimSettled) => void) | undefined;
}

/** A new claim record for `demand` runs, its slots promised. */
export function newLaneClaim(demand: number): LaneClaim {
  return { promised: demand, wakeRequested: false, drained: false, early: null };
}

/**
 * Sends `claim` (its demand is its `promised` slots) and hands its runs to
 * `accept` in the same synchronous step that frees its promised slots and
 * memory, so that no other claim can count them twice. Rejects (with a
 * `LanesError`, so that p-retry retries even a TypeError) when the claim failed.
 */
export async function sendClaim(
  sender: LaneClaimSender,
  claim: LaneClaim,
  attempt: number,
  accept: (runs: readonly ClaimedRun[], demand: number) => void,
): Promise<void> {
  const demand = claim.promised;
  const request: ClaimRequest = { demand, queues: sender.spec.queues };
  const memory = sender.memory;
  let promisedMb = 0;
  if (memory?.bounded === true) {
    request.memory = { freeMb: memory.freeMb, laneMb: memory.totalMb, defaultRunMb: memory.defaultRunMb };
    promisedMb = memory.freeMb;
    memory.promise(promisedMb);
  }
  const holdMs = sender.claimer.holdMs?.(request) ?? 0;
  const started = performance.now();
  let runs: readonly ClaimedRun[];
  try {
    runs = await sender.claimer.claim(request, sender.signal);
  } catch (error) {
    claim.promised = 0;
    memory?.unpromise(promisedMb);
    report(sender, { outcome: 'error', demand, runs: 0, attempt, durationMs: performance.now() - started, error });
    throw error instanceof LanesError ? error : new ClaimError(error);
  }
  // From here to the end of accept() nothing awaits, so no claim can see the slots twice.
  claim.promised = 0;
  memory?.unpromise(promisedMb);
  const durationMs = performance.now() - started;
  // Held by the server until its time ran out: the hold was the wait, so claim again at once (and be
  // held again) rather than back off. An empty reply well before the hold ended backs off as usual.
  if (runs.length === 0 && holdMs > 0 && durationMs >= holdMs / 2) claim.wakeRequested = true;
  accept(runs, demand);
  // After the runs went on their way (a run whose claim reply carried its plan is handed to the
  // engine within accept()): the claim's report is not on the way to their first line.
  report(sender, { outcome: runs.length > 0 ? 'runs' : 'empty', demand, runs: runs.length, attempt, durationMs });
}

function report(sender: LaneClaimSender, event: Omit<ClaimSettled, 'lane'>): void {
  if (sender.onClaimSettled === undefined) return;
  try {
    sender.onClaimSettled({ lane: sender.spec.id, ...event });
  } catch (error) {
    sender.logger.warn({ err: error }, 'claim listener threw');
  }
}
