import type { CliContext } from '../cli-context.ts';
import { EXIT_FAILURE } from '../exit-codes.ts';

/** Placeholder for a command whose issue has not landed yet. */
export function notYetImplemented(name: string, ctx: CliContext): number {
  ctx.err(`lanes ${name}: not yet implemented`);
  return EXIT_FAILURE;
}
