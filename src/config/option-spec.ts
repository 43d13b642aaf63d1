import type { ConfigSource } from '../errors/config-error.ts';

/**
 * One declarative table per command describes every option: its flag, its
 * env twin, its default and its meaning. The CLI builds `--help` from it,
 * the resolver reads values through it (so errors can say where a value came
 * from), and a test checks `.env.example` and docs/configuration.md against it.
 */
export interface OptionSpec {
  /** Flag name without dashes: `run-memory`. */
  flag: string;
  alias?: string;
  /** Environment variable twin, when there is one. */
  env?: string;
  type: 'string' | 'boolean';
  /** The default as a user would write it, for help and docs. */
  defaultText?: string;
  describe: string;
  /** Never printed: shown as "[redacted]" in dry-run output. */
  secret?: boolean;
  /** May be given more than once; the values are joined with commas. */
  repeatable?: boolean;
}

/** Where each option's raw value came from: a flag, an env variable, or nowhere. */
export interface RawValue {
  value: string;
  source: ConfigSource;
}
