import { LanesError } from '../errors/lanes-error.ts';

/**
 * An adaptor that cannot be used: not on the allow-list, not installable, or
 * not loadable. The run ends with reason `exception` / `AdaptorError`.
 */
export class AdaptorError extends LanesError {
  readonly adaptor: string;

  constructor(adaptor: string, message: string, options?: { cause?: unknown }) {
    super('ADAPTOR_UNAVAILABLE', message, options);
    this.adaptor = adaptor;
  }
}
