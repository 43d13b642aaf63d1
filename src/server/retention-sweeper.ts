/**
 * Retention (`--retain-days`): every `intervalMs`, deletes runs that finished
 * more than `retainMs` ago, with their attempts, steps, logs, event replies
 * and dataclips. It deletes in small batches, each its own short
 * transaction, and yields to the event loop between batches, so claims and
 * channel events are never held behind a large delete. On PostgreSQL every
 * replica may sweep: batches lock their rows with SKIP LOCKED.
 *
 * States: idle → running → stopped.
 */
import type { Logger } from 'pino';
import type { Store } from './store/store.ts';

type RetentionState = 'idle' | 'running' | 'stopped';

/** Runs per delete: small enough that a batch holds the database for milliseconds. */
export const RETENTION_BATCH = 200;

export class RetentionSweeper {
  readonly #store: Store;
  readonly #retainMs: number;
  readonly #intervalMs: number;
  readonly #logger: Logger;
  #timer: NodeJS.Timeout | undefined;
  #state: RetentionState = 'idle';
  #sweeping = false;

  constructor(options: { store: Store; retainMs: number; intervalMs: number; logger: Logger }) {
    this.#store = options.store;
    this.#retainMs = options.retainMs;
    this.#intervalMs = options.intervalMs;
    this.#logger = options.logger;
  }

  start(): void {
    if (this.#state !== 'idle') return;
    this.#state = 'running';
    this.#timer = setInterval(() => void this.#tick(), this.#intervalMs);
    this.#timer.unref();
    void this.#tick();
  }

  stop(): void {
    this.#state = 'stopped';
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  async #tick(): Promise<void> {
    if (this.#sweeping) return;
    this.#sweeping = true;
    try {
      await this.sweep();
    } finally {
      this.#sweeping = false;
    }
  }

  /** One pass: deletes batches until one comes back short. Returns how many runs it deleted. */
  async sweep(now = Date.now()): Promise<number> {
    let deleted = 0;
    try {
      for (;;) {
        if (this.#state === 'stopped' || !this.#store.isOpen) break;
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
