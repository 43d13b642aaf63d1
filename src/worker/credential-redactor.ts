/**
 * Scrubs credential values out of a run's job log lines before they leave
 * the worker, as Lightning scrubs them before storing: a job that logs its
 * `configuration` (or an adaptor that echoes a header) must not put a
 * password on the wire, in the server's database or in its API.
 *
 * Every credential the run fetched adds its samples: each non-empty string
 * value at any depth, plus the base64 of `user:password` (a Basic auth
 * header). Longer samples are replaced first, so a secret containing another
 * is removed whole. Numbers and booleans are not samples: redacting every
 * "443" or "true" would wreck logs and hide nothing.
 */

export const REDACTED = '[REDACTED]';

function collect(value: unknown, into: Set<string>): void {
  if (typeof value === 'string') {
    if (value.length > 0) into.add(value);
  } else if (Array.isArray(value)) {
    for (const item of value) collect(item, into);
  } else if (typeof value === 'object' && value !== null) {
    for (const item of Object.values(value)) collect(item, into);
  }
}

export class CredentialRedactor {
  #samples: string[] = [];

  /** Adds a fetched credential body's values to what is redacted. */
  add(body: unknown): void {
    const samples = new Set(this.#samples);
    collect(body, samples);
    if (typeof body === 'object' && body !== null && !Array.isArray(body)) {
      const record = body as Record<string, unknown>;
      const password = record['password'];
      for (const user of [record['username'], record['user'], record['email']]) {
        if (typeof user === 'string' && user && typeof password === 'string' && password) samples.add(Buffer.from(`${user}:${password}`).toString('base64'));
      }
    }
    this.#samples = [...samples].sort((a, b) => b.length - a.length);
  }

  /** A copy of `value` with every sample replaced by `[REDACTED]`, in strings and keys at any depth. */
  redact<T>(value: T): T {
    return this.#samples.length === 0 ? value : (this.#value(value) as T);
  }

  #string(text: string): string {
    let out = text;
    for (const sample of this.#samples) if (out.includes(sample)) out = out.split(sample).join(REDACTED);
    return out;
  }

  #value(value: unknown): unknown {
    if (typeof value === 'string') return this.#string(value);
    if (Array.isArray(value)) return value.map((item) => this.#value(item));
    if (typeof value === 'object' && value !== null) {
      const copy: Record<string, unknown> = {};
      for (const [key, item] of Object.entries(value)) {
        // defineProperty: a `__proto__` key stays a plain key.
        Object.defineProperty(copy, this.#string(key), { value: this.#value(item), enumerable: true, writable: true, configurable: true });
      }
      return copy;
    }
    return value;
  }
}
