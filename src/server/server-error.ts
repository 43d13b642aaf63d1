import { LanesError } from '../errors/lanes-error.ts';

/**
 * Errors the orchestration server raises on purpose: bad options, an invalid
 * state transition, a store that refuses a write. Codes are stable strings
 * (`SERVER_STATE`, `SERVER_OPTIONS`, `STORE_CONFLICT` …).
 */
export class ServerError extends LanesError {
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}
