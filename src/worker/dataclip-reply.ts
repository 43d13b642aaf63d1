/**
 * What the worker accepts as a `fetch:dataclip` reply: the run's input as
 * UTF-8 JSON, either in a binary frame (Lightning, `lanes server`: phoenix
 * hands over an ArrayBuffer) or as a JSON array of byte values (OpenFn's
 * lightning-mock, which sends `Array.from(bytes)` in a text frame). OpenFn's
 * worker reads both through `new Uint8Array(reply)`; a Lanes worker does too,
 * but checks every element is a byte first.
 */
export type DataclipReading = { ok: true; value: unknown } | { ok: false; problem: string; cause?: unknown };

export function decodeDataclip(reply: unknown): DataclipReading {
  let bytes: Uint8Array;
  if (reply instanceof ArrayBuffer) bytes = new Uint8Array(reply);
  else if (reply instanceof Uint8Array) bytes = reply;
  else if (Array.isArray(reply)) {
    bytes = new Uint8Array(reply.length);
    for (let i = 0; i < reply.length; i++) {
      const value: unknown = reply[i];
      if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 255) {
        return { ok: false, problem: `arrived as a list whose element ${i} is not a byte` };
      }
      bytes[i] = value;
    }
  } else return { ok: false, problem: 'did not arrive as a binary frame or a list of bytes' };
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch (error) {
    return { ok: false, problem: 'is not UTF-8', cause: error };
  }
  try {
    return { ok: true, value: JSON.parse(text) as unknown };
  } catch (error) {
    return { ok: false, problem: 'is not JSON', cause: error };
  }
}
