import type { Argv, Options } from 'yargs';
import type { OptionSpec } from '../config/option-spec.ts';

/**
 * Declares a command's options on yargs from its spec table. Options have no
 * yargs defaults on purpose: an absent flag must stay undefined so the
 * resolver can fall back to the env twin and know where a value came from.
 */
export function declareOptions<T>(yargs: Argv<T>, specs: readonly OptionSpec[]): Argv<T> {
  let built = yargs;
  for (const spec of specs) {
    const notes = [spec.env ? `env ${spec.env}` : undefined, spec.defaultText ? `default ${spec.defaultText}` : undefined]
      .filter((note) => note !== undefined)
      .join('; ');
    const options: Options = {
      type: spec.type,
      describe: notes ? `${spec.describe} [${notes}]` : spec.describe,
      ...(spec.alias ? { alias: spec.alias } : {}),
    };
    built = built.option(spec.flag, options);
  }
  return built;
}

/** The subset of parsed argv that belongs to the given specs, by flag name. */
export function pickFlags(argv: Record<string, unknown>, specs: readonly OptionSpec[]): Record<string, unknown> {
  const flags: Record<string, unknown> = {};
  for (const spec of specs) flags[spec.flag] = argv[spec.flag];
  return flags;
}
