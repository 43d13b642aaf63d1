/**
 * Ending a lane's backoff wait early: the `BackoffWake` a lane fires on
 * work-available, and `interruptibleDelay`, which either it or an AbortSignal cuts short.
 */

/** The reasons a backoff wait ends early with. Made once: they are not errors anyone sees. */
export const WOKEN = Object.freeze(new Error('lane woken'));
export const STOPPED = Object.freeze(new Error('lane stopped'));

/**
 * Ends one backoff wait early: the `signal` of one p-retry cycle (p-retry
 * duck-types signals: `aborted`, `reason`, `throwIfAborted` and the two
 * listener methods) and of the short wait after a drained claim.
 *
 * Not an AbortController, because a wake sits on the path from
 * work-available to the claim: aborting one dispatches through EventTarget,
 * about 70 µs on this path when the worker has been idle (measured on two
 * small cores), and `AbortSignal.any` to join it with the stop signal costs
 * another 25 µs. Here firing is a plain call of the one or two listeners.
 */
export class BackoffWake {
  aborted = false;
  reason: unknown = undefined;
  #listeners: Array<() => void> = [];

  addEventListener(_type: 'abort', listener: () => void): void {
    this.#listeners.push(listener);
  }

  removeEventListener(_type: 'abort', listener: () => void): void {
    this.#listeners = this.#listeners.filter((registered) => registered !== listener);
  }

  throwIfAborted(): void {
    if (this.aborted) throw this.reason;
  }

  fire(reason: Error): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    const listeners = this.#listeners;
    this.#listeners = [];
    for (const listener of listeners) listener();
  }

  /** This wake as p-retry's `signal` option, which is typed as an AbortSignal but only duck-typed. */
  asSignal(): AbortSignal {
    return this as unknown as AbortSignal;
  }
}

/** What can end a delay early: an AbortSignal, or a lane's BackoffWake. */
export interface Interrupt {
  readonly aborted: boolean;
  addEventListener(type: 'abort', listener: () => void): void;
  removeEventListener(type: 'abort', listener: () => void): void;
}

/** Resolves after `ms`, or as soon as `interrupt` fires. */
export function interruptibleDelay(ms: number, interrupt: Interrupt): Promise<void> {
  return new Promise((resolve) => {
    if (interrupt.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      interrupt.removeEventListener('abort', done);
      resolve();
    }
    interrupt.addEventListener('abort', done);
  });
}
