/**
 * The base of every error Lanes throws on purpose. `code` is a stable string
 * (`INVALID_WORKLOOPS`, `CLAIM_TIMEOUT`, `RUN_OOM` …) that callers and tests
 * match on; the message is for people.
 */
export class LanesError extends Error {
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}
