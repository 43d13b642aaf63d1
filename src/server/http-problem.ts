/**
 * An answer the JSON API gives on purpose: a 4xx (or 503) status, a stable
 * `error` code, a message and, when one input is to blame, the `field`
 * naming it. `HttpApi.handle` turns it into `{error, field?, message}`.
 */
export class HttpProblem extends Error {
  readonly status: number;
  readonly code: string;
  readonly field: string | undefined;
  constructor(status: number, code: string, message: string, field?: string) {
    super(message);
    this.status = status;
    this.code = code;
    this.field = field;
  }
}
