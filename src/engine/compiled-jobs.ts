/**
 * Compiled job code, kept by the engine across runs and children, keyed by
 * what the compile depends on: the job's body, its name (in messages) and
 * the adaptor file whose exports become imports. Compiling is pure (the same
 * inputs give the same ES module text), so a second run of the same job
 * skips it; only text is cached, never a module instance, so nothing of one
 * run's execution reaches another.
 *
 * The text comes back from the run's thread, which compiled it before any
 * job code ran there: the child accepts it only before the thread's first
 * event (see child-main.ts), so code of a run cannot plant an entry.
 */
import { hash } from 'node:crypto';

/** Entries kept at most; the least recently used goes first. */
const MAX_ENTRIES = 512;
/** A compiled job larger than this is not kept (a bundle pasted into a job). */
const MAX_CODE_CHARS = 256 * 1024;

export interface CompiledJobsStats {
  /** Entries kept now. */
  cached: number;
  /** Jobs handed to a thread already compiled. */
  hits: number;
  /** Jobs a thread compiled and reported back. */
  compiles: number;
}

export class CompiledJobs {
  readonly #entries = new Map<string, string>();
  #hits = 0;
  #compiles = 0;

  /** The cache key of a job: sha256 of body, name and adaptor entry path. */
  static key(body: string, name: string, adaptorEntryPath: string | null): string {
    return hash('sha256', JSON.stringify([body, name, adaptorEntryPath ?? '']), 'hex');
  }

  get(key: string): string | undefined {
    const code = this.#entries.get(key);
    if (code === undefined) return undefined;
    this.#hits += 1;
    // Most recently used last: Map keeps insertion order.
    this.#entries.delete(key);
    this.#entries.set(key, code);
    return code;
  }

  set(key: string, code: string): void {
    this.#compiles += 1;
    if (code.length > MAX_CODE_CHARS) return;
    this.#entries.delete(key);
    this.#entries.set(key, code);
    if (this.#entries.size > MAX_ENTRIES) {
      const oldest = this.#entries.keys().next().value;
      if (oldest !== undefined) this.#entries.delete(oldest);
    }
  }

  stats(): CompiledJobsStats {
    return { cached: this.#entries.size, hits: this.#hits, compiles: this.#compiles };
  }
}
