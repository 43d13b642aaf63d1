/**
 * The pool's gate on thread boots (docs/engine.md, "Warm spares"). Booting a
 * run thread costs ~0.13 s of CPU; when several runs end together, their
 * children would all boot their next spares at once, and a run starting on a
 * warm child beside them (an urgent fast-lane run) would share the cores with
 * every one of those boots. With the gate a child boots only when granted,
 * at most `limit` at a time; when a boot ends, the waiting child that ranks
 * lowest (the pool's order: a run waiting for its thread before a spare)
 * goes next, first come first served among equals. A boot ranked at most
 * `urgentRank` (an urgent run's thread, the urgent runs' reserve) starts at
 * once whatever the limit, and counts against it: waiting for another boot
 * to end would cost an urgent run more than sharing the cores with it.
 */
export interface BootGateStats {
  /** Boots granted at most at once. */
  limit: number;
  /** Boots granted and not ended yet. */
  booting: number;
  /** Children waiting for a grant. */
  waiting: number;
  /** The most boots ever granted at once. */
  mostAtOnce: number;
}

export interface BootGateOptions<C> {
  limit: number;
  /** Boots ranked at most this start at once, over the limit. */
  urgentRank: number;
  /** Lower goes first; asked whenever a boot may start, so it reads the children's state at that moment. */
  rank: (child: C) => number;
  /** Lets `child` boot now. */
  grant: (child: C) => void;
}

export class BootGate<C> {
  readonly #options: BootGateOptions<C>;
  readonly #waiting: C[] = [];
  /** One entry per boot granted and not ended (a child may hold two: a run's thread and the next spare). */
  readonly #booting: C[] = [];
  #mostAtOnce = 0;

  constructor(options: BootGateOptions<C>) {
    this.#options = options;
  }

  /** `child` wants to boot a thread. */
  request(child: C): void {
    if (!this.#waiting.includes(child)) this.#waiting.push(child);
    this.#pump();
  }

  /** A boot of `child` ended (booted or died): the next may start. */
  ended(child: C): void {
    const i = this.#booting.indexOf(child);
    if (i >= 0) this.#booting.splice(i, 1);
    this.#pump();
  }

  /** `child` is gone: its boots and its wait end. */
  forget(child: C): void {
    const i = this.#waiting.indexOf(child);
    if (i >= 0) this.#waiting.splice(i, 1);
    for (let j = this.#booting.indexOf(child); j >= 0; j = this.#booting.indexOf(child)) this.#booting.splice(j, 1);
    this.#pump();
  }

  stats(): BootGateStats {
    return { limit: this.#options.limit, booting: this.#booting.length, waiting: this.#waiting.length, mostAtOnce: this.#mostAtOnce };
  }

  #pump(): void {
    while (this.#waiting.length > 0) {
      let best = 0;
      let bestRank = this.#options.rank(this.#waiting[0] as C);
      for (let i = 1; i < this.#waiting.length; i += 1) {
        const rank = this.#options.rank(this.#waiting[i] as C);
        if (rank < bestRank) {
          best = i;
          bestRank = rank;
        }
      }
      if (bestRank > this.#options.urgentRank && this.#booting.length >= this.#options.limit) return;
      const [child] = this.#waiting.splice(best, 1) as [C];
      this.#booting.push(child);
      this.#mostAtOnce = Math.max(this.#mostAtOnce, this.#booting.length);
      this.#options.grant(child);
    }
  }
}
