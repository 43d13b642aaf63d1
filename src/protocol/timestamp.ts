/**
 * Protocol timestamps are strings of microseconds since the Unix epoch.
 * `performance.timeOrigin + performance.now()` gives sub-millisecond
 * resolution that is still monotonic within one process.
 */
export function timestampMicros(): string {
  const micros = Math.round((performance.timeOrigin + performance.now()) * 1000);
  return String(micros);
}

/** Parses a protocol timestamp; `undefined` for anything that is not one. */
export function parseTimestampMicros(value: unknown): bigint | undefined {
  if (typeof value !== 'string' || !/^\d{1,20}$/.test(value)) return undefined;
  return BigInt(value);
}
