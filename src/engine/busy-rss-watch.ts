/**
 * The hard per-run memory cap (docs/memory.md, "the hard per-run cap"): busy
 * children are sampled far more often than idle ones, because memory outside
 * the V8 heap (Buffers) is caught only here, and a run allocating as fast as
 * it can passes its ceiling by what it allocates between two samples. The
 * timer runs only while runs are active. The last sample of each run is kept
 * for metrics.
 */
import type { Logger } from 'pino';
import { endForOom } from '../runtime/run-ends.ts';
import type { RunEnd } from '../runtime/run-ends.ts';
import type { PooledChild } from './pooled-child.ts';
import { processRssBytes } from './process-rss.ts';

const MB = 1024 * 1024;

export interface BusyRssWatchOptions {
  intervalMs: number;
  /** A run's ceiling is its memory limit plus this. */
  rssHeadroomMb: number;
  logger: Logger;
  /** The pool's children, read at each sample. */
  children: () => Iterable<PooledChild>;
  /** Whether `runId` is still an active run of the engine. */
  isActive: (runId: string) => boolean;
  /** Ends a run whose process passed its ceiling: at once, no grace period. */
  kill: (runId: string, end: RunEnd) => void;
}

export class BusyRssWatch {
  readonly #options: BusyRssWatchOptions;
  #timer: NodeJS.Timeout | undefined;
  #inFlight = false;
  /** The last resident memory sampled for each active run's child: runId → bytes. */
  readonly #runRss = new Map<string, number>();

  constructor(options: BusyRssWatchOptions) {
    this.#options = options;
  }

  /** Starts sampling, if not already. */
  watch(): void {
    if (this.#timer !== undefined) return;
    this.#timer = setInterval(() => void this.#sample(), this.#options.intervalMs);
    this.#timer.unref();
  }

  /** Stops sampling. */
  unwatch(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** The resident memory of the child running `runId`, as last sampled, in bytes. */
  runRssBytes(runId: string): number | undefined {
    return this.#runRss.get(runId);
  }

  /** Drops a finished run's sample. */
  forget(runId: string): void {
    this.#runRss.delete(runId);
  }

  async #sample(): Promise<void> {
    if (this.#inFlight) return;
    this.#inFlight = true;
    const o = this.#options;
    try {
      for (const child of [...o.children()]) {
        const runId = child.runId;
        const limitMb = child.runMemoryLimitMb;
        if (child.state !== 'busy' || runId === undefined || limitMb === undefined || child.pid === undefined) continue;
        const rss = await processRssBytes(child.pid);
        if (rss !== undefined && child.runId === runId && o.isActive(runId)) this.#runRss.set(runId, rss);
        const ceilingMb = limitMb + o.rssHeadroomMb;
        if (rss === undefined || rss <= ceilingMb * MB || child.runId !== runId) continue;
        o.logger.warn({ runId, childId: child.id, rssMb: Math.round(rss / MB), ceilingMb }, 'run process over its memory ceiling, killing it');
        // Memory is running away: no grace period, the child is SIGKILLed at once.
        o.kill(runId, endForOom(`its process reached ${Math.round(rss / MB)} MB RSS, over ${ceilingMb} MB`));
      }
    } finally {
      this.#inFlight = false;
    }
  }
}
