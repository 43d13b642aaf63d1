/**
 * Retention (`--retain-days`): every `intervalMs`, deletes runs that finished
 * more than `retainMs` ago, with their attempts, steps, logs, event replies
 * and dataclips. It deletes in small batches, each its own short
 * transaction, and yields to the event loop between batches, so claims and
 * channel events are never held behind a large delete. On PostgreSQL every
 * replica may sweep: batches lock their rows with SKIP LOCKED.
 *
 * States: idle → running → stopped (or idle → stopped). The interval timer
 * and whether a sweep is in flight belong to the running state.
 */
import type { Logger } from 'pino';
import { StateMachine } from '../state-machine.ts';
import type { Store } from './store/store.ts';

type RetentionState = { kind: 'idle' } | { kind: 'running'; timer: NodeJS.Timeout; sweeping: boolean } | { kind: 'stopped' };

/** Runs per delete: small enough that a batch holds the database for milliseconds. */
export const RETENTION_BATCH = 200;

export class RetentionSweeper {
  readonly #store: Store;
  readonly #retainMs: number;
  readonly #intervalMs: number;
  readonly #logger: Logger;
  readonly #state: StateMachine<RetentionState>;

  constructor(options: { store: Store; retainMs: number; intervalMs: number; logger: Logger }) {
    this.#store = options.store;
    this.#retainMs = options.retainMs;
    this.#intervalMs = options.intervalMs;
    this.#logger = options.logger;
    this.#state = new StateMachine<RetentionState>({
      name: 'retention sweeper',
      initial: { kind: 'idle' },
      transitions: { idle: ['running', 'stopped'], running: ['stopped'], stopped: [] },
      logger: this.#logger,
    });
  }

  start(): void {
    if (this.#state.kind !== 'idle') return;
    const timer = setInterval(() => void this.#tick(), this.#intervalMs);
    timer.unref();
    this.#state.to({ kind: 'running', timer, sweeping: false });
    void this.#tick();
  }

  stop(): void {
    const running = this.#state.when('running');
    if (running) clearInterval(running.timer);
    if (this.#state.kind !== 'stopped') this.#state.to({ kind: 'stopped' });
  }

  async #tick(): Promise<void> {
    const running = this.#state.when('running');
    if (!running || running.sweeping) return;
    running.sweeping = true;
    try {
      await this.sweep();
    } finally {
      running.sweeping = false;
    }
  }

  /** One pass: deletes batches until one comes back short. Returns how many runs it deleted. */
  async sweep(now = Date.now()): Promise<number> {
    let deleted = 0;
    try {
      for (;;) {
        if (this.#state.kind === 'stopped' || !this.#store.isOpen) break;
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
