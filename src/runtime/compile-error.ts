import { LanesError } from '../errors/lanes-error.ts';

/**
 * Job code that cannot be turned into a module: a syntax error, or a `$`
 * lazy-state reference where it cannot work. `line`/`column` point into the
 * job body as the user wrote it (1-based line, 0-based column, like acorn).
 */
export class CompileError extends LanesError {
  readonly line: number | undefined;
  readonly column: number | undefined;

  constructor(message: string, position?: { line: number; column: number }, options?: { cause?: unknown }) {
    super('COMPILE_ERROR', message, options);
    this.line = position?.line;
    this.column = position?.column;
  }
}
