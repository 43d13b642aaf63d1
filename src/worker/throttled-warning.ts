/**
 * A warning that repeats while a condition lasts (the server cannot be
 * reached, refuses the token, refuses the join) is logged the first time and
 * then at most once per `everyMs`, with how many times it happened in
 * between, so a worker says what it waits for without flooding its log.
 */
import type { Logger } from 'pino';

export const WARN_EVERY_MS = 30_000;

export class ThrottledWarning {
  readonly #logger: Logger;
  readonly #everyMs: number;
  readonly #now: () => number;
  /** Per message: when it was last logged and how often it was held back since. */
  readonly #last = new Map<string, { at: number; suppressed: number }>();

  constructor(logger: Logger, options: { everyMs?: number; now?: () => number } = {}) {
    this.#logger = logger;
    this.#everyMs = options.everyMs ?? WARN_EVERY_MS;
    this.#now = options.now ?? Date.now;
  }

  /** Logs `msg` at warn with `fields` unless it was logged less than `everyMs` ago. */
  warn(fields: Record<string, unknown>, msg: string): void {
    const now = this.#now();
    const last = this.#last.get(msg);
    if (last !== undefined && now - last.at < this.#everyMs) {
      last.suppressed += 1;
      return;
    }
    this.#logger.warn({ ...fields, ...(last !== undefined ? { repeatedSinceLastLog: last.suppressed } : {}) }, msg);
    this.#last.set(msg, { at: now, suppressed: 0 });
  }

  /** The condition is over (joined): the next occurrence is logged at once. */
  reset(): void {
    this.#last.clear();
  }
}
