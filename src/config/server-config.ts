/**
 * `lanes server` configuration, resolved from flags and env like the
 * worker's (see worker-config.ts), frozen, units in the names.
 */
import { readFileSync } from 'node:fs';
import { apiTokenProblem, isLoopbackHost } from '../protocol/index.ts';
import type { OptionSpec } from './option-spec.ts';
import { parseList, parseLogFormat, parseLogLevel, parsePort, parseSecondsToMs } from './parse-value.ts';
import type { LogFormat, LogLevelName } from './parse-value.ts';
import { RawConfig, parseWithSource } from './raw-config.ts';
import type { EnvValues, FlagValues } from './raw-config.ts';
import { ConfigError } from '../errors/config-error.ts';

export const SERVER_OPTIONS: readonly OptionSpec[] = [
  { flag: 'port', alias: 'p', env: 'LANES_PORT', type: 'string', defaultText: '4000', describe: 'Port of the API and the worker socket (0 picks a free one)' },
  { flag: 'host', env: 'LANES_HOST', type: 'string', defaultText: '127.0.0.1', describe: 'Address to listen on (0.0.0.0 for every interface)' },
  { flag: 'db', env: 'LANES_DB', type: 'string', defaultText: './lanes.db', describe: 'SQLite database file (":memory:" keeps nothing), or a postgres:// URL (several servers on one database are one queue)' },
  { flag: 'retain-days', env: 'LANES_RETAIN_DAYS', type: 'string', defaultText: 'keep for ever', describe: 'Delete finished runs, their logs and dataclips this many days after they finished' },
  { flag: 'secret', alias: 's', env: 'WORKER_SECRET', type: 'string', describe: 'Shared secret that workers sign their tokens with (required)', secret: true },
  { flag: 'api-token', env: 'LANES_API_TOKEN', type: 'string', defaultText: 'generated for the run on loopback; required beyond it', describe: 'Bearer token(s) that open the JSON API, comma-separated (at least 16 characters each)', secret: true },
  { flag: 'api-token-file', env: 'LANES_API_TOKEN_FILE', type: 'string', describe: 'File of API tokens, one per line (# starts a comment); adds to --api-token' },
  { flag: 'private-key', env: 'LANES_RUNS_PRIVATE_KEY', type: 'string', defaultText: 'generated beside the database', describe: 'PEM private key (or base64 PEM) that signs run tokens', secret: true },
  { flag: 'reconnect-grace-seconds', env: 'LANES_RECONNECT_GRACE_SECONDS', type: 'string', defaultText: '5', describe: 'When a worker\'s socket closes, its runs are lost unless it reconnects within this many seconds' },
  { flag: 'log', env: 'LANES_LOG_LEVEL', type: 'string', defaultText: 'info', describe: 'Log level: fatal, error, warn, info, debug, trace or silent' },
  { flag: 'log-format', env: 'LANES_LOG_FORMAT', type: 'string', defaultText: 'json (pretty on a terminal)', describe: 'Log format: json or pretty' },
];

export interface ServerConfig {
  readonly port: number;
  readonly host: string;
  readonly dbPath: string;
  readonly retainDays: number | null;
  readonly secret: string;
  /** Tokens that open the JSON API; empty only on a loopback host (the CLI then generates one). */
  readonly apiTokens: readonly string[];
  readonly privateKeyPem: string | null;
  readonly reconnectGraceMs: number;
  readonly logLevel: LogLevelName;
  readonly logFormat: LogFormat;
}

export function resolveServerConfig(flags: FlagValues, env: EnvValues, context: { isTty?: boolean } = {}): ServerConfig {
  const raw = new RawConfig(SERVER_OPTIONS, flags, env);
  const secret = raw.get('secret');
  if (!secret) throw new ConfigError('--secret/WORKER_SECRET', { kind: 'default' }, undefined, 'is required: set --secret or WORKER_SECRET');
  const host = raw.read('host', nonEmpty, '127.0.0.1');
  const apiTokens = Object.freeze([...raw.read('api-token', parseApiTokens, []), ...raw.read('api-token-file', readApiTokenFile, [])]);
  if (apiTokens.length === 0 && !isLoopbackHost(host)) {
    const hostRaw = raw.get('host');
    throw new ConfigError('--api-token/LANES_API_TOKEN', hostRaw?.source ?? { kind: 'default' }, undefined, `is required to listen on ${host}, beyond loopback (set --api-token, LANES_API_TOKEN or --api-token-file)`);
  }
  return Object.freeze({
    port: raw.read('port', parsePort, 4000),
    host,
    dbPath: readDatabase(raw),
    retainDays: raw.read('retain-days', parseRetainDays, null),
    secret: secret.value,
    apiTokens,
    privateKeyPem: raw.read('private-key', nonEmpty, null),
    reconnectGraceMs: raw.read('reconnect-grace-seconds', parseSecondsToMs, 5_000),
    logLevel: raw.read('log', parseLogLevel, 'info'),
    logFormat: raw.read('log-format', parseLogFormat, context.isTty ? 'pretty' : 'json'),
  });
}

/** A SQLite path, `:memory:`, or a `postgres://` URL that parses. The message never repeats a URL: it may hold a password. */
function readDatabase(raw: RawConfig): string {
  const given = raw.get('db');
  if (!given) return './lanes.db';
  const db = parseWithSource(raw.describe('db'), given, nonEmpty);
  if (!/^postgres(ql)?:/i.test(db)) return db;
  let url: URL | undefined;
  try {
    url = new URL(db);
  } catch {
    url = undefined;
  }
  if (url === undefined || !/^postgres(ql)?:$/i.test(url.protocol) || url.hostname === '' || url.pathname.length <= 1) {
    throw new ConfigError(raw.describe('db'), given.source, undefined, 'is not a postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE URL (value not shown: it may hold a password)');
  }
  return db;
}

/** Days as a positive number (fractions allowed), at most 100 years. */
function parseRetainDays(value: string): number {
  const days = Number(value.trim());
  if (value.trim() === '' || !Number.isFinite(days) || days <= 0 || days > 36_500) throw new Error('must be a positive number of days');
  return days;
}

function nonEmpty(value: string): string {
  const trimmed = value.trim();
  if (trimmed.length === 0) throw new Error('must not be empty');
  return trimmed;
}

/** Comma-separated tokens; each must be usable (`apiTokenProblem`). The message never quotes a token. */
function parseApiTokens(value: string): string[] {
  const tokens = parseList(value);
  if (tokens.length === 0) throw new Error('holds no token');
  for (const [index, token] of tokens.entries()) {
    const problem = apiTokenProblem(token);
    if (problem) throw new Error(`token ${index + 1} ${problem}`);
  }
  return tokens;
}

function readApiTokenFile(path: string): string[] {
  let text: string;
  try {
    text = readFileSync(path.trim(), 'utf8');
  } catch (error) {
    throw new Error(`cannot be read: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
  }
  const lines = text.split(/\r?\n/).map((line) => line.trim()).filter((line) => line.length > 0 && !line.startsWith('#'));
  return parseApiTokens(lines.join(','));
}
