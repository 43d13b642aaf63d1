/**
 * `lanes server` configuration, resolved from flags and env like the
 * worker's (see worker-config.ts), frozen, units in the names.
 */
import type { OptionSpec } from './option-spec.ts';
import { parseLogFormat, parseLogLevel, parsePort } from './parse-value.ts';
import type { LogFormat, LogLevelName } from './parse-value.ts';
import { RawConfig } from './raw-config.ts';
import type { EnvValues, FlagValues } from './raw-config.ts';
import { ConfigError } from '../errors/config-error.ts';

export const SERVER_OPTIONS: readonly OptionSpec[] = [
  { flag: 'port', alias: 'p', env: 'LANES_PORT', type: 'string', defaultText: '4000', describe: 'Port of the API and the worker socket (0 picks a free one)' },
  { flag: 'host', env: 'LANES_HOST', type: 'string', defaultText: '127.0.0.1', describe: 'Address to listen on (0.0.0.0 for every interface)' },
  { flag: 'db', env: 'LANES_DB', type: 'string', defaultText: './lanes.db', describe: 'SQLite database file (":memory:" keeps nothing)' },
  { flag: 'secret', alias: 's', env: 'WORKER_SECRET', type: 'string', describe: 'Shared secret that workers sign their tokens with (required)', secret: true },
  { flag: 'private-key', env: 'LANES_RUNS_PRIVATE_KEY', type: 'string', defaultText: 'generated beside the database', describe: 'PEM private key (or base64 PEM) that signs run tokens', secret: true },
  { flag: 'log', env: 'LANES_LOG_LEVEL', type: 'string', defaultText: 'info', describe: 'Log level: fatal, error, warn, info, debug, trace or silent' },
  { flag: 'log-format', env: 'LANES_LOG_FORMAT', type: 'string', defaultText: 'json (pretty on a terminal)', describe: 'Log format: json or pretty' },
];

export interface ServerConfig {
  readonly port: number;
  readonly host: string;
  readonly dbPath: string;
  readonly secret: string;
  readonly privateKeyPem: string | null;
  readonly logLevel: LogLevelName;
  readonly logFormat: LogFormat;
}

export function resolveServerConfig(flags: FlagValues, env: EnvValues, context: { isTty?: boolean } = {}): ServerConfig {
  const raw = new RawConfig(SERVER_OPTIONS, flags, env);
  const secret = raw.get('secret');
  if (!secret) throw new ConfigError('--secret/WORKER_SECRET', { kind: 'default' }, undefined, 'is required: set --secret or WORKER_SECRET');
  return Object.freeze({
    port: raw.read('port', parsePort, 4000),
    host: raw.read('host', nonEmpty, '127.0.0.1'),
    dbPath: raw.read('db', nonEmpty, './lanes.db'),
    secret: secret.value,
    privateKeyPem: raw.read('private-key', nonEmpty, null),
    logLevel: raw.read('log', parseLogLevel, 'info'),
    logFormat: raw.read('log-format', parseLogFormat, context.isTty ? 'pretty' : 'json'),
  });
}

function nonEmpty(value: string): string {
  const trimmed = value.trim();
  if (trimmed.length === 0) throw new Error('must not be empty');
  return trimmed;
}
