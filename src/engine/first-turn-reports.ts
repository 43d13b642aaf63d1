/**
 * A run's reports from its first turn, held in the child until that turn ends.
 *
 * When a run reaches its thread, the thread reports at once that it started,
 * then the runtime's first log lines and the step's start, all before the
 * first line of job code. Passed on as they come, each wakes the worker and
 * then the server (an event, a push, a write) on a machine whose cores the
 * run's thread needs to get to that line: measured side by side, holding
 * them cut the child's CPU before the first line by a quarter and the time
 * to it by about 0.3 ms (2026-12-01).
 *
 * So the child holds them, in order, and passes them on when the thread says
 * its first turn ended (its first `setImmediate`: the job code awaited
 * something, or finished), when the thread dies or its run ends or stops,
 * or after `holdMs` at most, for a first turn that computes for long. The
 * reports are held here, not in the thread: a thread killed in its first
 * turn (a timeout, an out-of-memory) loses nothing it had reported. Their
 * timestamps are the thread's, so holding them changes when they arrive,
 * never what they say.
 */
import type { ChildToParent } from './ipc-messages.ts';

/** Longest a first turn's reports wait: a job that computes from its first line still shows its step soon. */
export const FIRST_TURN_HOLD_MS = 20;

export class FirstTurnReports {
  readonly #send: (message: ChildToParent) => void;
  #held: ChildToParent[] | undefined = [];
  readonly #timer: NodeJS.Timeout;

  constructor(send: (message: ChildToParent) => void, holdMs = FIRST_TURN_HOLD_MS) {
    this.#send = send;
    this.#timer = setTimeout(() => this.release(), holdMs);
  }

  /** Held while the first turn lasts, sent at once after it. */
  report(message: ChildToParent): void {
    if (this.#held === undefined) this.#send(message);
    else this.#held.push(message);
  }

  /** Sends what was held, in order; from now on reports go at once. Idempotent. */
  release(): void {
    const held = this.#held;
    if (held === undefined) return;
    this.#held = undefined;
    clearTimeout(this.#timer);
    for (const message of held) this.#send(message);
  }
}
