/**
 * Bounds the `queue` label of the server's metrics. Clients name queues
 * freely, and every distinct label value is a series that each scrape carries
 * for good: ten thousand invented queue names made `/metrics` tens of
 * megabytes. The first `limit` queues seen keep their own label; any queue
 * after them is counted under `~other` (not a valid queue name, so it cannot
 * collide with one).
 */
export const MAX_QUEUE_LABELS = 50;
export const OTHER_QUEUES_LABEL = '~other';

export class QueueLabels {
  readonly #limit: number;
  readonly #admitted = new Set<string>();

  constructor(limit = MAX_QUEUE_LABELS) {
    this.#limit = limit;
  }

  /** The label value to use for `queue`: itself while there is room (or once admitted), else `~other`. */
  label(queue: string): string {
    if (this.#admitted.has(queue)) return queue;
    if (this.#admitted.size >= this.#limit) return OTHER_QUEUES_LABEL;
    this.#admitted.add(queue);
    return queue;
  }
}
