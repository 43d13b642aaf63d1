/**
 * Parsers for option values. Each throws a plain `Error` whose message says
 * what was expected; `RawConfig.read` adds the option, source and value.
 */

export function parsePositiveNumber(value: string): number {
  const trimmed = value.trim();
  if (!/^\d+(\.\d+)?$/.test(trimmed)) throw new Error('must be a positive number');
  const parsed = Number(trimmed);
  if (!(parsed > 0) || !Number.isFinite(parsed)) throw new Error('must be a positive number');
  return parsed;
}

export function parsePositiveInteger(value: string): number {
  const trimmed = value.trim();
  if (!/^[1-9]\d*$/.test(trimmed) || !Number.isSafeInteger(Number(trimmed))) {
    throw new Error('must be a positive whole number');
  }
  return Number(trimmed);
}

export function parseNonNegativeInteger(value: string): number {
  const trimmed = value.trim();
  if (!/^(0|[1-9]\d*)$/.test(trimmed) || !Number.isSafeInteger(Number(trimmed))) throw new Error('must be a whole number, 0 or more');
  return Number(trimmed);
}

/** A nice value a process may take without privileges: 0 (unchanged) to 19 (lowest priority). */
export function parseNice(value: string): number {
  const n = parseNonNegativeInteger(value);
  if (n > 19) throw new Error('must be a nice value from 0 to 19');
  return n;
}

export function parsePort(value: string): number {
  const trimmed = value.trim();
  if (!/^\d+$/.test(trimmed) || Number(trimmed) > 65535) throw new Error('must be a port number from 0 to 65535');
  return Number(trimmed);
}

export function parseBoolean(value: string): boolean {
  const lowered = value.trim().toLowerCase();
  if (['true', '1', 'yes', 'on'].includes(lowered)) return true;
  if (['false', '0', 'no', 'off'].includes(lowered)) return false;
  throw new Error('must be true or false');
}

/** Seconds as given by the user (decimals allowed), to milliseconds. */
export function parseSecondsToMs(value: string): number {
  return Math.round(parsePositiveNumber(value) * 1000);
}

export function parseList(value: string): string[] {
  return value
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item.length > 0);
}

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevelName = (typeof LOG_LEVELS)[number];

export function parseLogLevel(value: string): LogLevelName {
  const lowered = value.trim().toLowerCase();
  const level = LOG_LEVELS.find((candidate) => candidate === lowered);
  if (!level) throw new Error(`must be one of ${LOG_LEVELS.join(', ')}`);
  return level;
}

export const LOG_FORMATS = ['json', 'pretty'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

export function parseLogFormat(value: string): LogFormat {
  const lowered = value.trim().toLowerCase();
  const format = LOG_FORMATS.find((candidate) => candidate === lowered);
  if (!format) throw new Error(`must be one of ${LOG_FORMATS.join(', ')}`);
  return format;
}

/** `min/max` in seconds (`1/10`), to milliseconds; min must not exceed max. */
export function parseBackoff(value: string): { minMs: number; maxMs: number } {
  const match = /^\s*(\d+(?:\.\d+)?)\s*\/\s*(\d+(?:\.\d+)?)\s*$/.exec(value);
  if (!match || match[1] === undefined || match[2] === undefined) {
    throw new Error('must be MIN/MAX in seconds, like 1/10');
  }
  const minMs = Math.round(Number(match[1]) * 1000);
  const maxMs = Math.round(Number(match[2]) * 1000);
  if (minMs <= 0) throw new Error('MIN must be greater than 0');
  if (minMs > maxMs) throw new Error('MIN must not be greater than MAX');
  return { minMs, maxMs };
}

export function parseWebSocketUrl(value: string): string {
  let url: URL;
  try {
    url = new URL(value.trim());
  } catch {
    throw new Error('must be a URL like ws://localhost:4000/worker');
  }
  if (url.protocol !== 'ws:' && url.protocol !== 'wss:') throw new Error('must start with ws:// or wss://');
  return url.toString().replace(/\/$/, '');
}

/** One or more `ws://`/`wss://` URLs, comma-separated, without duplicates. */
export function parseWebSocketUrls(value: string): string[] {
  const urls = value.split(',').map((part) => part.trim()).filter((part) => part.length > 0);
  if (urls.length === 0) throw new Error('must name at least one URL like ws://localhost:4000/worker');
  if (urls.length > 32) throw new Error('must name at most 32 URLs');
  const parsed = urls.map((url) => {
    try {
      return parseWebSocketUrl(url);
    } catch (error) {
      throw new Error(`${JSON.stringify(url)} ${error instanceof Error ? error.message : String(error)}`, { cause: error });
    }
  });
  return [...new Set(parsed)];
}

export function parseHttpUrl(value: string): string {
  let url: URL;
  try {
    url = new URL(value.trim());
  } catch {
    throw new Error('must be a URL like http://localhost:4000');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error('must start with http:// or https://');
  return url.toString().replace(/\/$/, '');
}
