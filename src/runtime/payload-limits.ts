/**
 * Payload limits, applied where the data is made (in the run's thread) so an
 * oversized state or log line never crosses a process boundary.
 */

const MB = 1024 * 1024;

export interface SizedOutput {
  json: string | null;
  tooLarge: boolean;
  bytes: number;
}

/** Serialises a step's output; over the limit it becomes `null` + `tooLarge`. */
export function sizeOutput(state: unknown, limitMb: number): SizedOutput {
  const json = safeJson(state ?? null);
  const bytes = Buffer.byteLength(json, 'utf8');
  if (limitMb > 0 && bytes > limitMb * MB) return { json: null, tooLarge: true, bytes };
  return { json, tooLarge: false, bytes };
}

export const TRUNCATION_MARKER = '[TRUNCATED]';

/**
 * Bounds one log line. Over the limit the message becomes a single string:
 * the start of its JSON text and a marker saying how big it was.
 */
export function limitLogMessage(message: unknown[], limitMb: number): unknown[] {
  if (limitMb <= 0) return message;
  const limit = limitMb * MB;
  // Cheap check first: most lines are short strings.
  let rough = 0;
  for (const part of message) rough += typeof part === 'string' ? part.length * 3 : Infinity;
  if (rough <= limit) return message;
  const json = safeJson(message);
  const bytes = Buffer.byteLength(json, 'utf8');
  if (bytes <= limit) return message;
  const keep = Math.max(0, Math.floor(limit / 4) - 128);
  return [`${json.slice(0, keep)}… ${TRUNCATION_MARKER} log line of ${bytes} bytes exceeded the ${limitMb} MB limit`];
}

/** JSON that never throws: cycles become "[Circular]", bigints strings, functions dropped. */
export function safeJson(value: unknown): string {
  const seen = new WeakSet<object>();
  return (
    JSON.stringify(value, (_key, v: unknown) => {
      if (typeof v === 'bigint') return v.toString();
      if (typeof v === 'object' && v !== null) {
        if (seen.has(v)) return '[Circular]';
        seen.add(v);
      }
      return v;
    }) ?? 'null'
  );
}

/** A value made safe for structured clone and JSON: plain data only. */
export function toPlain(value: unknown): unknown {
  if (value === null || typeof value !== 'object') {
    return typeof value === 'function' || typeof value === 'symbol' ? String(value) : typeof value === 'bigint' ? value.toString() : value;
  }
  if (value instanceof Error) return { name: value.name, message: value.message };
  return JSON.parse(safeJson(value)) as unknown;
}
