/**
 * Which adaptor entry paths warm spares keep imported: the configured
 * adaptors (pinned), then the most recently used ones, at most `recentLimit`
 * of them. The engine sends the list to every child when it changes.
 */
export class AdaptorPreloads {
  readonly #recentLimit: number;
  /** Configured adaptors: specifier → entry path. */
  readonly #pinned = new Map<string, string>();
  #recent: string[] = [];

  constructor(recentLimit: number) {
    this.#recentLimit = recentLimit;
  }

  /** The entry paths to preload, pinned first, without repeats. */
  paths(): string[] {
    return [...new Set([...this.#pinned.values(), ...this.#recent])];
  }

  /** Keeps a configured adaptor preloaded for good. */
  pin(specifier: string, entryPath: string): void {
    this.#pinned.set(specifier, entryPath);
  }

  /** Moves these entry paths to the front of the recent ones. Returns whether `paths()` changed. */
  noteRecent(entryPaths: readonly string[]): boolean {
    const before = this.paths().join('\n');
    for (const entryPath of entryPaths) this.#recent = [entryPath, ...this.#recent.filter((p) => p !== entryPath)];
    this.#recent = this.#recent.slice(0, this.#recentLimit);
    return this.paths().join('\n') !== before;
  }
}
