/**
 * Pushes `work-available` to the workers whose lanes could take newly queued
 * runs, debounced on the leading edge: the first enqueue notifies at once,
 * further enqueues within the window are coalesced into one trailing push
 * (which opens a new window), so a lone urgent run is never delayed and a
 * burst costs each worker at most one push per window.
 *
 * States: idle → windowOpen → idle; stopped (terminal, drops everything).
 */
import type { Logger } from 'pino';
import type { WorkerRegistry } from './worker-registry.ts';
import { couldTake } from './worker-registry.ts';

type NotifierState = 'idle' | 'windowOpen' | 'stopped';

export class WorkNotifier {
  readonly #registry: WorkerRegistry;
  readonly #debounceMs: number;
  readonly #logger: Logger;
  readonly #pending = new Set<string>();
  #timer: NodeJS.Timeout | undefined;
  #state: NotifierState = 'idle';
  /** Pushes sent, for tests and metrics. */
  pushes = 0;

  constructor(options: { registry: WorkerRegistry; debounceMs: number; logger: Logger }) {
    this.#registry = options.registry;
    this.#debounceMs = options.debounceMs;
    this.#logger = options.logger;
  }

  /** Work was queued in `queue`. */
  notify(queue: string): void {
    if (this.#state === 'stopped') return;
    if (this.#state === 'windowOpen') {
      this.#pending.add(queue);
      return;
    }
    this.#push(new Set([queue]));
    this.#openWindow();
  }

  stop(): void {
    this.#state = 'stopped';
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#pending.clear();
  }

  #openWindow(): void {
    if (this.#debounceMs <= 0) return;
    this.#state = 'windowOpen';
    this.#timer = setTimeout(() => this.#closeWindow(), this.#debounceMs);
    this.#timer.unref();
  }

  #closeWindow(): void {
    this.#timer = undefined;
    if (this.#state === 'stopped') return;
    this.#state = 'idle';
    if (this.#pending.size === 0) return;
    const queues = new Set(this.#pending);
    this.#pending.clear();
    this.#push(queues);
    this.#openWindow();
  }

  #push(queues: Set<string>): void {
    for (const worker of this.#registry.list()) {
      if (![...queues].some((queue) => couldTake(worker, queue))) continue;
      try {
        worker.pushWorkAvailable();
        this.pushes += 1;
      } catch (error) {
        this.#logger.warn({ err: error, workerId: worker.workerId }, 'work-available push failed');
      }
    }
  }
}
