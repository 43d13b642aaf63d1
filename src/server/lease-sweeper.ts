/**
 * The periodic sweep that turns lapsed leases into `lost` runs (and, under
 * the retry policy, back into available ones). A lease lapses when a
 * heartbeating run misses `leaseMs`, or when a run on a worker that never
 * heartbeats passes claim time + run timeout + grace.
 * Every `intervalMs` (`PeriodicTask`: a slow sweep is never stacked with
 * the next one, and none starts after stop()).
 */
import type { Logger } from 'pino';
import { PeriodicTask } from './periodic-task.ts';
import type { RunLifecycle } from './run-lifecycle.ts';
import type { Store } from './store/store.ts';
import type { ServerMetrics } from './server-metrics.ts';

export const LOST_ERROR_TYPE = 'LostError';

export class LeaseSweeper {
  readonly #store: Store;
  readonly #lifecycle: RunLifecycle;
  readonly #metrics: ServerMetrics;
  readonly #logger: Logger;
  readonly #task: PeriodicTask;

  constructor(options: { store: Store; lifecycle: RunLifecycle; metrics: ServerMetrics; intervalMs: number; logger: Logger }) {
    this.#store = options.store;
    this.#lifecycle = options.lifecycle;
    this.#metrics = options.metrics;
    this.#logger = options.logger;
    this.#task = new PeriodicTask({ name: 'lease sweeper', intervalMs: options.intervalMs, run: () => this.sweep(), logger: this.#logger });
  }

  start(): void {
    this.#task.start();
  }

  stop(): void {
    this.#task.stop();
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
