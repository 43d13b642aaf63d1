/**
 * Retention (`--retain-days`): every `intervalMs`, deletes runs that finished
 * more than `retainMs` ago, with their attempts, steps, logs, event replies
 * and dataclips. It deletes in small batches, each its own short
 * transaction, and yields to the event loop between batches, so claims and
 * channel events are never held behind a large delete. On PostgreSQL every
 * replica may sweep: batches lock their rows with SKIP LOCKED. It sweeps at
 * start too; a sweep is never stacked on a slow one (`PeriodicTask`), and a
 * stop ends a sweep between two batches.
 */
import type { Logger } from 'pino';
import { PeriodicTask } from './periodic-task.ts';
import type { Store } from './store/store.ts';

/** Runs per delete: small enough that a batch holds the database for milliseconds. */
export const RETENTION_BATCH = 200;

export class RetentionSweeper {
  readonly #store: Store;
  readonly #retainMs: number;
  readonly #logger: Logger;
  readonly #task: PeriodicTask;

  constructor(options: { store: Store; retainMs: number; intervalMs: number; logger: Logger }) {
    this.#store = options.store;
    this.#retainMs = options.retainMs;
    this.#logger = options.logger;
    this.#task = new PeriodicTask({ name: 'retention sweeper', intervalMs: options.intervalMs, runAtStart: true, run: () => this.sweep(), logger: this.#logger });
  }

  start(): void {
    this.#task.start();
  }

  stop(): void {
    this.#task.stop();
  }

  /** One pass: deletes batches until one comes back short. Returns how many runs it deleted. */
  async sweep(now = Date.now()): Promise<number> {
    let deleted = 0;
    try {
      for (;;) {
        if (this.#task.stopped || !this.#store.isOpen) break;
        const batch = await this.#store.deleteFinishedBefore(now - this.#retainMs, RETENTION_BATCH);
        deleted += batch;
        if (batch < RETENTION_BATCH) break;
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
    } catch (error) {
      this.#logger.error({ err: error }, 'retention sweep failed');
    }
    if (deleted > 0) this.#logger.info({ runs: deleted, retainMs: this.#retainMs }, 'finished runs deleted by retention');
    return deleted;
  }
}
