/**
 * Removes credential values from a run's log lines before they are stored,
 * as Lightning does: a job that logs its `configuration` (or a library that
 * echoes a header) must not leave a password in the database or the API.
 *
 * Samples are every non-empty string value of the run's credentials (at any
 * depth), plus the base64 of `username:password` and `email:password`, the
 * form a Basic auth header carries. Longer samples are replaced first, so a
 * secret that contains another is removed whole. Numbers and booleans are not
 * samples: scrubbing every "443" or "true" would wreck logs and hide nothing.
 */

export const REDACTED = '[REDACTED]';

function collectStrings(value: unknown, into: Set<string>): void {
  if (typeof value === 'string') {
    if (value.length > 0) into.add(value);
  } else if (Array.isArray(value)) {
    for (const item of value) collectStrings(item, into);
  } else if (typeof value === 'object' && value !== null) {
    for (const item of Object.values(value)) collectStrings(item, into);
  }
}

function basicAuthSamples(body: unknown, into: Set<string>): void {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return;
  const record = body as Record<string, unknown>;
  const password = record['password'];
  if (typeof password !== 'string' || password.length === 0) return;
  for (const user of [record['username'], record['user'], record['email']]) {
    if (typeof user === 'string' && user.length > 0) into.add(Buffer.from(`${user}:${password}`).toString('base64'));
  }
}

export class CredentialScrubber {
  readonly #samples: readonly string[];

  constructor(credentialBodies: readonly unknown[]) {
    const samples = new Set<string>();
    for (const body of credentialBodies) {
      collectStrings(body, samples);
      basicAuthSamples(body, samples);
    }
    this.#samples = [...samples].sort((a, b) => b.length - a.length);
  }

  get empty(): boolean {
    return this.#samples.length === 0;
  }

  /** A copy of `value` with every sample replaced by `[REDACTED]` in strings and object keys, at any depth. */
  scrub<T>(value: T): T {
    if (this.#samples.length === 0) return value;
    return this.#scrubValue(value) as T;
  }

  #scrubString(text: string): string {
    let result = text;
    for (const sample of this.#samples) {
      if (result.includes(sample)) result = result.split(sample).join(REDACTED);
    }
    return result;
  }

  #scrubValue(value: unknown): unknown {
    if (typeof value === 'string') return this.#scrubString(value);
    if (Array.isArray(value)) return value.map((item) => this.#scrubValue(item));
    if (typeof value === 'object' && value !== null) {
      const copy: Record<string, unknown> = {};
      for (const [key, item] of Object.entries(value)) {
        // defineProperty: a `__proto__` key stays a plain key, as JSON.parse made it.
        Object.defineProperty(copy, this.#scrubString(key), { value: this.#scrubValue(item), enumerable: true, writable: true, configurable: true });
      }
      return copy;
    }
    return value;
  }
}
