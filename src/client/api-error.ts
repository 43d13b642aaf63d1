import { LanesError } from '../errors/lanes-error.ts';

/** The server answered an API request with an error status. */
export class ApiError extends LanesError {
  readonly status: number;
  readonly body: unknown;

  constructor(status: number, body: unknown, what: string) {
    const detail = typeof body === 'object' && body !== null && 'message' in body ? String((body as { message: unknown }).message) : JSON.stringify(body);
    super('API_ERROR', `${what}: HTTP ${status}: ${detail}`);
    this.status = status;
    this.body = body;
  }
}

/** The server could not be reached at all. */
export class ServerUnreachableError extends LanesError {
  constructor(url: string, cause: unknown) {
    super('SERVER_UNREACHABLE', `cannot reach the Lanes server at ${url}`, { cause });
  }
}
