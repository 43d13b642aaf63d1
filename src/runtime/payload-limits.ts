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

/**
 * Serialises a step's output; over the limit it becomes `null` + `tooLarge`.
 * A state whose size is over the limit by a cheap lower bound is refused
 * without being serialised: a 150 MB state must not cost another 150 MB of
 * JSON text in a thread that is already near its heap limit.
 */
export function sizeOutput(state: unknown, limitMb: number): SizedOutput {
  if (limitMb > 0) {
    const atLeast = jsonBytesAtLeast(state ?? null, limitMb * MB);
    if (atLeast > limitMb * MB) return { json: null, tooLarge: true, bytes: atLeast };
  }
  const json = safeJson(state ?? null);
  const bytes = Buffer.byteLength(json, 'utf8');
  if (limitMb > 0 && bytes > limitMb * MB) return { json: null, tooLarge: true, bytes };
  return { json, tooLarge: false, bytes };
}

/**
 * A lower bound of the UTF-8 size of `safeJson(value)`, that stops counting
 * once it passes `stopAfter`. A string's length in UTF-16 units never exceeds
 * its UTF-8 bytes, and quotes, escapes and separators only add, so when this
 * is over the limit the JSON is too. Follows `toJSON` as JSON.stringify does;
 * a repeated object counts as the "[Circular]" safeJson writes.
 */
export function jsonBytesAtLeast(value: unknown, stopAfter: number): number {
  const seen = new WeakSet<object>();
  let total = 0;
  const walk = (v: unknown): void => {
    if (total > stopAfter) return;
    if (typeof v === 'string') {
      total += v.length + 2;
      return;
    }
    if (typeof v !== 'object' || v === null) {
      total += 1;
      return;
    }
    const withToJson = v as { toJSON?: unknown };
    if (typeof withToJson.toJSON === 'function') {
      let replaced: unknown;
      try {
        replaced = (withToJson.toJSON as () => unknown)();
      } catch {
        return; // safeJson would throw too; the exact path reports it
      }
      if (replaced !== v) {
        walk(replaced);
        return;
      }
    }
    if (seen.has(v)) {
      total += 12;
      return;
    }
    seen.add(v);
    if (Array.isArray(v)) {
      total += 2;
      for (const item of v) walk(item);
      return;
    }
    total += 2;
    for (const key of Object.keys(v)) {
      const item = (v as Record<string, unknown>)[key];
      // JSON leaves these keys out altogether.
      if (item === undefined || typeof item === 'function' || typeof item === 'symbol') continue;
      total += key.length + 3;
      walk(item);
    }
  };
  walk(value);
  return total;
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
