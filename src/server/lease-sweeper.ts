/**
 * The periodic sweep that turns lapsed leases into `lost` runs (and, under
 * the retry policy, back into available ones). A lease lapses when a
 * heartbeating run misses `leaseMs`, or when a run on a worker that never
 * heartbeats passes claim time + run timeout + grace.
 *
 * States: idle → running → stopped (or idle → stopped). The interval timer
 * and whether a sweep is in flight belong to the running state.
 */
import type { Logger } from 'pino';
import { StateMachine } from '../state-machine.ts';
import type { RunLifecycle } from './run-lifecycle.ts';
import type { Store } from './store/store.ts';
import type { ServerMetrics } from './server-metrics.ts';

type SweeperState = { kind: 'idle' } | { kind: 'running'; timer: NodeJS.Timeout; sweeping: boolean } | { kind: 'stopped' };

export const LOST_ERROR_TYPE = 'LostError';

export class LeaseSweeper {
  readonly #store: Store;
  readonly #lifecycle: RunLifecycle;
  readonly #metrics: ServerMetrics;
  readonly #intervalMs: number;
  readonly #logger: Logger;
  readonly #state: StateMachine<SweeperState>;

  constructor(options: { store: Store; lifecycle: RunLifecycle; metrics: ServerMetrics; intervalMs: number; logger: Logger }) {
    this.#store = options.store;
    this.#lifecycle = options.lifecycle;
    this.#metrics = options.metrics;
    this.#intervalMs = options.intervalMs;
    this.#logger = options.logger;
    this.#state = new StateMachine<SweeperState>({
      name: 'lease sweeper',
      initial: { kind: 'idle' },
      transitions: { idle: ['running', 'stopped'], running: ['stopped'], stopped: [] },
      logger: this.#logger,
    });
  }

  start(): void {
    if (this.#state.kind !== 'idle') return;
    const timer = setInterval(() => {
      // A sweep that outlasts the period (a slow database) is not stacked with the next one.
      const running = this.#state.when('running');
      if (!running || running.sweeping) return;
      running.sweeping = true;
      void this.sweep().finally(() => {
        running.sweeping = false;
      });
    }, this.#intervalMs);
    timer.unref();
    this.#state.to({ kind: 'running', timer, sweeping: false });
  }

  stop(): void {
    const running = this.#state.when('running');
    if (running) clearInterval(running.timer);
    if (this.#state.kind !== 'stopped') this.#state.to({ kind: 'stopped' });
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
