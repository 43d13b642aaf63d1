import type { ConfigSource } from '../errors/config-error.ts';
import { ConfigError } from '../errors/config-error.ts';
import type { OptionSpec, RawValue } from './option-spec.ts';

/** Flag values as a CLI parser hands them over: absent options are undefined. */
export type FlagValues = Readonly<Record<string, unknown>>;
export type EnvValues = Readonly<Record<string, string | undefined>>;

/**
 * Raw option values with their source. A flag wins over its env twin; an
 * empty env variable counts as unset (deployments often template `VAR=`).
 */
export class RawConfig {
  readonly #specs: Map<string, OptionSpec>;
  readonly #flags: FlagValues;
  readonly #env: EnvValues;

  constructor(specs: readonly OptionSpec[], flags: FlagValues, env: EnvValues) {
    this.#specs = new Map(specs.map((spec) => [spec.flag, spec]));
    this.#flags = flags;
    this.#env = env;
  }

  spec(flag: string): OptionSpec {
    const spec = this.#specs.get(flag);
    if (!spec) throw new Error(`no option spec for --${flag}`);
    return spec;
  }

  /** The flag's value if given, else its env twin's, else undefined. */
  get(flag: string): RawValue | undefined {
    const spec = this.spec(flag);
    const fromFlag = this.#flags[flag];
    if (fromFlag !== undefined && fromFlag !== null) {
      if (Array.isArray(fromFlag) && spec.repeatable === true) {
        return { value: fromFlag.map(String).join(','), source: { kind: 'flag', name: flag } };
      }
      if (Array.isArray(fromFlag)) {
        throw new ConfigError(`--${flag}`, { kind: 'flag', name: flag }, fromFlag.map(String).join(' '), 'was given more than once');
      }
      return { value: String(fromFlag), source: { kind: 'flag', name: flag } };
    }
    if (spec.env) {
      const fromEnv = this.#env[spec.env];
      if (fromEnv !== undefined && fromEnv.trim() !== '') return { value: fromEnv, source: { kind: 'env', name: spec.env } };
    }
    return undefined;
  }

  /** Human name of the option and its env twin, for messages. */
  describe(flag: string): string {
    const spec = this.spec(flag);
    return spec.env ? `--${flag}/${spec.env}` : `--${flag}`;
  }

  /** Reads and parses one option, or returns the fallback when it is unset. */
  read<T>(flag: string, parse: (value: string) => T, fallback: T): T {
    const raw = this.get(flag);
    if (!raw) return fallback;
    return parseWithSource(this.describe(flag), raw, parse, this.spec(flag).secret === true);
  }
}

/** Wraps a parser's plain `Error` into a `ConfigError` naming option, source and value (never a secret's value). */
export function parseWithSource<T>(option: string, raw: RawValue, parse: (value: string) => T, secret = false): T {
  try {
    return parse(raw.value);
  } catch (error) {
    if (error instanceof ConfigError) throw error;
    const reason = error instanceof Error ? error.message : String(error);
    throw new ConfigError(option, raw.source, secret ? '[redacted]' : raw.value, reason);
  }
}

export type { ConfigSource };
