/**
 * The periodic sweep that turns lapsed leases into `lost` runs (and, under
 * the retry policy, back into available ones). A lease lapses when a
 * heartbeating run misses `leaseMs`, or when a run on a worker that never
 * heartbeats passes claim time + run timeout + grace.
 *
 * States: idle → running → stopped.
 */
import type { Logger } from 'pino';
import type { RunLifecycle } from './run-lifecycle.ts';
import type { Store } from './store/store.ts';
import type { ServerMetrics } from './server-metrics.ts';

type SweeperState = 'idle' | 'running' | 'stopped';

export const LOST_ERROR_TYPE = 'LostError';

export class LeaseSweeper {
  readonly #store: Store;
  readonly #lifecycle: RunLifecycle;
  readonly #metrics: ServerMetrics;
  readonly #intervalMs: number;
  readonly #logger: Logger;
  #timer: NodeJS.Timeout | undefined;
  #state: SweeperState = 'idle';
  #sweeping = false;

  constructor(options: { store: Store; lifecycle: RunLifecycle; metrics: ServerMetrics; intervalMs: number; logger: Logger }) {
    this.#store = options.store;
    this.#lifecycle = options.lifecycle;
    this.#metrics = options.metrics;
    this.#intervalMs = options.intervalMs;
    this.#logger = options.logger;
  }

  start(): void {
    if (this.#state !== 'idle') return;
    this.#state = 'running';
    this.#timer = setInterval(() => {
      // A sweep that outlasts the period (a slow database) is not stacked with the next one.
      if (this.#sweeping) return;
      this.#sweeping = true;
      void this.sweep().finally(() => {
        this.#sweeping = false;
      });
    }, this.#intervalMs);
    this.#timer.unref();
  }

  stop(): void {
    this.#state = 'stopped';
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** One pass; returns how many runs it declared lost. */
  async sweep(now = Date.now()): Promise<number> {
    if (!this.#store.isOpen) return 0;
    let lost = 0;
    try {
      for (const run of await this.#store.expiredLeases(now)) {
        const message =
          run.leaseMode === 'heartbeat'
            ? 'no heartbeat within the lease'
            : 'not finished within the run timeout and grace';
        const result = await this.#lifecycle.finish(run, { state: 'lost', reason: null, errorType: LOST_ERROR_TYPE, errorMessage: message }, now);
        if (result === 'stale') continue;
        lost += 1;
        this.#metrics.runsLost.inc(this.#metrics.queueLabel(run.queue));
        this.#logger.warn({ runId: run.id, workerId: run.workerId, attempt: run.attempts, leaseMode: run.leaseMode, requeued: result === 'requeued' }, 'run lost');
      }
    } catch (error) {
      this.#logger.error({ err: error }, 'lease sweep failed');
    }
    return lost;
  }
}
