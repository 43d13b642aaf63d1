/**
 * A run's reports from its first turn, held until that turn ends.
 *
 * When a run reaches its thread, the thread reports at once that it started,
 * then the runtime's first log lines and the step's start, all before the
 * first line of job code. Passed on as they come, each sets the worker and
 * then the server to work (a push, a write, a reply) on a machine whose
 * cores the run's thread needs to get to that line.
 *
 * So the run's session (run-session.ts) holds them, in order, and passes
 * them on when the thread says its first turn ended (its first
 * `setImmediate`: the job code awaited something, or finished), when the run
 * asks for a credential or settles, or after `holdMs` at most, for a first
 * turn that computes for long. They are held in the worker's process, where
 * the run's end is decided: a run killed in its first turn (a time-out, its
 * memory) reports everything it had reported. Their timestamps are the
 * thread's, so holding them changes when they arrive, never what they say.
 */

/** Longest a first turn's reports wait: a job that computes from its first line still shows its step soon. */
export const FIRST_TURN_HOLD_MS = 20;

export class FirstTurnReports<T> {
  readonly #send: (report: T) => void;
  #held: T[] | undefined = [];
  readonly #timer: NodeJS.Timeout;

  constructor(send: (report: T) => void, holdMs = FIRST_TURN_HOLD_MS) {
    this.#send = send;
    this.#timer = setTimeout(() => this.release(), holdMs);
  }

  /** Held while the first turn lasts, sent at once after it. */
  report(report: T): void {
    if (this.#held === undefined) this.#send(report);
    else this.#held.push(report);
  }

  /** Sends what was held, in order; from now on reports go at once. Idempotent. */
  release(): void {
    const held = this.#held;
    if (held === undefined) return;
    this.#held = undefined;
    clearTimeout(this.#timer);
    for (const report of held) this.#send(report);
  }
}
