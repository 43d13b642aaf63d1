import { pino } from 'pino';
import type { Logger } from 'pino';
import type { LogFormat, LogLevelName } from '../config/parse-value.ts';

/**
 * Paths pino blanks out wherever they appear in a log record, as a last line
 * of defence: code should never log these in the first place.
 */
export const REDACT_PATHS = [
  'secret',
  '*.secret',
  'token',
  '*.token',
  'config.secret',
  'config.lightningPublicKey',
  'privateKeyPem',
  '*.privateKeyPem',
  'credential',
  '*.credential',
  'configuration',
  '*.configuration',
  'authorization',
  'headers.authorization',
];

/** The root logger: JSON lines to stdout, or pretty for a person at a terminal. */
export function createRootLogger(options: { level: LogLevelName; format: LogFormat; name: string }): Logger {
  return pino({
    name: options.name,
    level: options.level,
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    ...(options.format === 'pretty'
      ? { transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname' } } }
      : {}),
  });
}
