/**
 * Removes credential values from a run's job log lines, with one rule on both
 * sides: the worker redacts before a line leaves it, and the server redacts
 * again before it stores one (as Lightning does), so a job that logs its
 * `configuration`, or an adaptor that echoes a header, puts no password on
 * the wire, in the database or in the API.
 *
 * The samples are every non-empty string value of each credential (at any
 * depth), plus the base64 of `username:password`, `user:password` and
 * `email:password` (a Basic auth header). Longer samples are replaced first,
 * so a secret that contains another is removed whole. Numbers and booleans
 * are not samples: redacting every "443" or "true" would wreck logs and hide
 * nothing.
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

export class CredentialRedactor {
  #samples: readonly string[] = [];

  /** A redactor for these credential bodies; `add()` takes more as the run fetches them. */
  constructor(credentialBodies: readonly unknown[] = []) {
    for (const body of credentialBodies) this.add(body);
  }

  /** Adds a credential body's values to what is redacted. */
  add(body: unknown): void {
    const samples = new Set(this.#samples);
    collectStrings(body, samples);
    basicAuthSamples(body, samples);
    this.#samples = [...samples].sort((a, b) => b.length - a.length);
  }

  /** True while there is nothing to redact. */
  get empty(): boolean {
    return this.#samples.length === 0;
  }

  /** A copy of `value` with every sample replaced by `[REDACTED]`, in strings and object keys at any depth. */
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
        // defineProperty: a `__proto__` key stays a plain key, as JSON.parse made it.
        Object.defineProperty(copy, this.#string(key), { value: this.#value(item), enumerable: true, writable: true, configurable: true });
      }
      return copy;
    }
    return value;
  }
}
