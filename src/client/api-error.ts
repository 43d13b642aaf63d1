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
