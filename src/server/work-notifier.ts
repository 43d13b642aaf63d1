/**
 * Pushes `work-available` to the workers whose lanes could take newly queued
 * runs. Each worker connection has its own coalescing window, opened by a
 * push:
 *
 *   - no window open, or the worker has claimed since its last push → push at
 *     once and open a window (leading edge: a lone urgent run is never held
 *     back, and neither is a run queued after the worker acted on the last
 *     push, as happens when runs arrive one after another);
 *   - otherwise the queue is remembered, and one trailing push at the end of
 *     the window covers everything queued meanwhile.
 *
 * So a burst of enqueues costs a worker at most one push per window plus one
 * per claim it makes: never a flood, never a delay for work it has not yet
 * been told about.
 *
 * Each push names the queues it is about (`work_queues`; the registry turns
 * that into `{}` for a worker that did not declare it): the leading push its
 * queue plus any still pending from the window it replaces, the trailing push
 * every queue of its window. A worker wakes only the lanes that could take
 * one of them, so a queue is never dropped from a push; past
 * `MAX_WORK_QUEUES` the push names none, and every lane wakes.
 *
 * A worker that holds claims (`held_claims`, held-claims.ts) has them tried
 * first: when its held claims could take the queue for every lane of it
 * that could, no push is needed (the lanes are waiting in those claims);
 * otherwise the push goes out too, for the lanes not holding one. The
 * workers' held claims are tried in turn, one worker's after the other's,
 * starting one worker further on each time, so that idle workers share the
 * runs instead of the first one to have joined taking them all.
 *
 * A run submitted on SQLite is first offered to one held claim inside its
 * own transaction (`handOff`, run-hand-off.ts); only when no claim took it
 * are the held claims served and the pushes sent as above.
 *
 * Notifier states: running → stopped (terminal, drops everything).
 */
import type { Logger } from 'pino';
import type { ConnectedWorker, WorkerRegistry } from './worker-registry.ts';
import { couldTake, lanesThatCouldTake } from './worker-registry.ts';
import { MAX_WORK_QUEUES } from '../protocol/index.ts';
import type { HandOff } from './held-claims.ts';
import type { HandOffContext } from './run-hand-off.ts';

interface Window {
  timer: NodeJS.Timeout;
  /** Queues enqueued inside the window, for the trailing push. */
  pending: Set<string>;
  /** The worker claimed since the last push: the next enqueue is news to it. */
  claimedSincePush: boolean;
}

export class WorkNotifier {
  readonly #registry: WorkerRegistry;
  readonly #debounceMs: number;
  readonly #logger: Logger;
  readonly #windows = new Map<string, Window>();
  #stopped = false;
  /** Where the next round of held claims starts in the registry's list (round robin). */
  #serveTurn = 0;
  /** Pushes sent, for tests and metrics. */
  pushes = 0;

  constructor(options: { registry: WorkerRegistry; debounceMs: number; logger: Logger }) {
    this.#registry = options.registry;
    this.#debounceMs = options.debounceMs;
    this.#logger = options.logger;
  }

  /**
   * Work was queued in `queue`. `stored` false: it is about to be (SQLite's
   * early announce, submit-route.ts): pushes go out now, and held claims are
   * tried once it is, by `stored(queue)`.
   */
  notify(queue: string, stored = true): void {
    if (this.#stopped) return;
    const serving: ConnectedWorker[] = [];
    for (const worker of stored ? this.#inTurn() : this.#registry.list()) {
      if (!couldTake(worker, queue)) continue;
      const held = worker.heldClaimsFor(queue);
      if (stored && held > 0) serving.push(worker);
      if (held > 0 && held >= lanesThatCouldTake(worker, queue)) continue;
      const window = this.#windows.get(worker.connectionId);
      if (window && !window.claimedSincePush) {
        window.pending.add(queue);
        continue;
      }
      // A window replaced by this push hands its pending queues to it: their lanes must still wake.
      const queues = window ? new Set(window.pending).add(queue) : new Set([queue]);
      this.#push(worker, queues);
    }
    if (serving.length > 0) void this.#serveInTurn(serving, queue);
  }

  /** Work announced with `notify(queue, false)` is stored now: the held claims that could take it try it. */
  stored(queue: string): void {
    if (this.#stopped) return;
    const serving = this.#inTurn().filter((worker) => couldTake(worker, queue) && worker.heldClaimsFor(queue) > 0);
    if (serving.length > 0) void this.#serveInTurn(serving, queue);
  }

  /**
   * The held claims of `workers` try work of `queue`, one worker after the
   * other, until one worker's claims found the queue drained. Worker by
   * worker, not all at once: on PostgreSQL claims run side by side, and the
   * worker whose turn it is would not always be the one whose claim gets
   * there first.
   */
  async #serveInTurn(workers: readonly ConnectedWorker[], queue: string): Promise<void> {
    for (const worker of workers) {
      if (this.#stopped) return;
      if (await worker.serveHeldClaims(queue)) return;
    }
  }

  /**
   * A run of `queue`, due now, is being stored in `context`'s transaction:
   * the first held claim that could take it, trying the workers in turn as
   * `stored` does, is tried there (run-hand-off.ts). The caller settles the
   * hand-off once the transaction ends.
   */
  async handOff(queue: string, context: HandOffContext): Promise<HandOff | undefined> {
    if (this.#stopped) return undefined;
    for (const worker of this.#inTurn()) {
      if (!couldTake(worker, queue)) continue;
      const handOff = await worker.handOffHeld(queue, context);
      if (handOff !== undefined) return handOff;
    }
    return undefined;
  }

  /** The connected workers, starting one further on at each call. */
  #inTurn(): ConnectedWorker[] {
    const workers = this.#registry.list();
    if (workers.length < 2) return workers;
    const start = this.#serveTurn % workers.length;
    this.#serveTurn = (start + 1) % workers.length;
    return [...workers.slice(start), ...workers.slice(0, start)];
  }

  /** The worker on this connection sent a claim: it has acted on the pushes so far. */
  claimed(connectionId: string): void {
    const window = this.#windows.get(connectionId);
    if (window) window.claimedSincePush = true;
  }

  /** The connection is gone: drop its window. */
  forget(connectionId: string): void {
    const window = this.#windows.get(connectionId);
    if (window) clearTimeout(window.timer);
    this.#windows.delete(connectionId);
  }

  stop(): void {
    this.#stopped = true;
    for (const window of this.#windows.values()) clearTimeout(window.timer);
    this.#windows.clear();
  }

  #push(worker: ConnectedWorker, queues: ReadonlySet<string>): void {
    try {
      worker.pushWorkAvailable(queues.size > MAX_WORK_QUEUES ? null : [...queues]);
      this.pushes += 1;
    } catch (error) {
      this.#logger.warn({ err: error, workerId: worker.workerId }, 'work-available push failed');
    }
    this.#openWindow(worker.connectionId);
  }

  #openWindow(connectionId: string): void {
    const previous = this.#windows.get(connectionId);
    if (previous) clearTimeout(previous.timer);
    if (this.#debounceMs <= 0) {
      this.#windows.delete(connectionId);
      return;
    }
    const timer = setTimeout(() => this.#closeWindow(connectionId), this.#debounceMs);
    timer.unref();
    this.#windows.set(connectionId, { timer, pending: new Set(), claimedSincePush: false });
  }

  #closeWindow(connectionId: string): void {
    const window = this.#windows.get(connectionId);
    this.#windows.delete(connectionId);
    if (this.#stopped || !window || window.pending.size === 0) return;
    const worker = this.#registry.get(connectionId);
    if (worker) this.#push(worker, window.pending);
  }
}
