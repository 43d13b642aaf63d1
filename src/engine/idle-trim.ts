/**
 * Which idle pooled children to let go (docs/memory.md, "the warm pool"):
 * a child idle for longer than the timeout is retired, oldest idle first,
 * as long as at least `minWarm` children remain, so the lanes that pin a
 * queue (the fast lane) and the spares always find a warm child. The engine
 * forks children again, up to its pool size, when runs need them.
 */
export class IdleTrim<C extends object> {
  readonly timeoutMs: number;
  readonly minWarm: number;
  readonly #idleSince = new WeakMap<C, number>();

  constructor(timeoutMs: number, minWarm: number) {
    this.timeoutMs = timeoutMs;
    this.minWarm = minWarm;
  }

  get enabled(): boolean {
    return this.timeoutMs > 0;
  }

  /** A child became idle now. */
  noteIdle(child: C, now: number): void {
    this.#idleSince.set(child, now);
  }

  /** The children to retire now, oldest idle first, never leaving fewer than `minWarm`. */
  toRetire(children: readonly C[], isIdle: (child: C) => boolean, now: number): C[] {
    if (!this.enabled) return [];
    const spare = children.length - this.minWarm;
    if (spare <= 0) return [];
    return children
      .filter((child) => isIdle(child) && now - (this.#idleSince.get(child) ?? now) >= this.timeoutMs)
      .sort((a, b) => (this.#idleSince.get(a) ?? now) - (this.#idleSince.get(b) ?? now))
      .slice(0, spare);
  }
}
