/**
 * Tells the worker holding a run that the run was cancelled (the `run_cancel`
 * extension, docs/protocol.md): a `run:cancel` push on each of that worker's
 * `worker:queue` connections to this server that declared the extension. A
 * worker without it (Lightning's contract) hears nothing and learns of the
 * cancel from the error reply to its next event, as before.
 *
 * The run lifecycle calls `runCancelled` once the cancel is stored; where the
 * worker's socket lives on another replica, that replica's notifier is the one
 * that finds it (the store carries the news between replicas).
 */
import type { Logger } from 'pino';
import type { WorkerRegistry } from './worker-registry.ts';

/** What the run lifecycle needs: someone to tell when a handed-out run is cancelled. */
export interface RunCancelListener {
  runCancelled(runId: string, workerId: string): void;
}

export class CancelNotifier implements RunCancelListener {
  readonly #registry: WorkerRegistry;
  readonly #logger: Logger;
  /** Pushes sent, for tests and metrics. */
  pushes = 0;

  constructor(options: { registry: WorkerRegistry; logger: Logger }) {
    this.#registry = options.registry;
    this.#logger = options.logger;
  }

  /** Pushes `run:cancel` to the worker's connections here; returns how many were told. */
  runCancelled(runId: string, workerId: string): number {
    let told = 0;
    for (const worker of this.#registry.byWorker(workerId)) {
      if (!worker.cancels) continue;
      try {
        worker.pushRunCancel(runId);
        told += 1;
      } catch (error) {
        this.#logger.warn({ err: error, runId, workerId }, 'run:cancel push failed');
      }
    }
    this.pushes += told;
    if (told > 0) this.#logger.info({ runId, workerId }, 'run:cancel pushed to its worker');
    return told;
  }
}
