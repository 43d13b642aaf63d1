import { LanesError } from './lanes-error.ts';

/** Where a configuration value came from, for error messages. */
export type ConfigSource = { kind: 'flag'; name: string } | { kind: 'env'; name: string } | { kind: 'default' };

export function describeSource(source: ConfigSource): string {
  if (source.kind === 'flag') return `flag --${source.name}`;
  if (source.kind === 'env') return `env ${source.name}`;
  return 'not set';
}

/**
 * A configuration value that cannot be used. The message is one line naming
 * the option, where the value came from and the value itself, so the CLI can
 * print it as-is and exit 2.
 */
export class ConfigError extends LanesError {
  readonly option: string;
  readonly source: ConfigSource;

  constructor(option: string, source: ConfigSource, value: string | undefined, reason: string) {
    // Quoted whole unless huge: the message stays one readable line whatever was passed.
    const quoted = value === undefined ? '' : JSON.stringify(value.length > 200 ? `${value.slice(0, 197)}...` : value);
    const shown = value === undefined ? '' : ` ${quoted}`;
    super('INVALID_CONFIG', `invalid ${option} (${describeSource(source)}):${shown} ${reason}`);
    this.option = option;
    this.source = source;
  }
}
