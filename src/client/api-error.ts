import { LanesError } from '../errors/lanes-error.ts';

/** The server answered an API request with an error status. */
export class ApiError extends LanesError {
  readonly status: number;
  readonly body: unknown;

  constructor(status: number, body: unknown, what: string) {
    super('API_ERROR', `${what}: HTTP ${status}: ${describe(body)}`);
    this.status = status;
    this.body = body;
  }
}

/** The server's error body (`{error, field?, message}`, docs/server.md) as one line: `field: message` when it names the field. */
function describe(body: unknown): string {
  if (typeof body !== 'object' || body === null || !('message' in body)) return JSON.stringify(body);
  const { message, field } = body as { message: unknown; field?: unknown };
  return typeof field === 'string' ? `${field}: ${String(message)}` : String(message);
}

/** The server could not be reached at all. */
export class ServerUnreachableError extends LanesError {
  constructor(url: string, cause: unknown) {
    super('SERVER_UNREACHABLE', `cannot reach the Lanes server at ${url}`, { cause });
  }
}

/** A request the client refused to send: the server would refuse it for the same reason (the same schema). */
export class InvalidRequestError extends LanesError {
  readonly field: string;

  constructor(field: string, message: string) {
    super('INVALID_REQUEST', `${field}: ${message}`);
    this.field = field;
  }
}

/** The server answered with a body that does not fit the API's schema (another server, or another version). */
export class UnexpectedResponseError extends LanesError {
  constructor(what: string, field: string, message: string) {
    super('UNEXPECTED_RESPONSE', `${what}: the answer does not fit the API: ${field === '' ? 'body' : field} ${message}`);
  }
}
