/**
 * The Phoenix V2 serializer, server side. Text frames are JSON arrays
 * `[join_ref, ref, topic, event, payload]`. Binary frames follow the layout the
 * phoenix client 1.8 decodes (priv/static/phoenix.mjs, `Serializer`):
 *
 *   reply: kind=1 | len(join_ref) | len(ref) | len(topic) | len(status) | join_ref | ref | topic | status | payload
 *   push:  kind=0 | len(join_ref) | len(ref) | len(topic) | len(event) | join_ref | ref | topic | event | payload   (client → server)
 *
 * every length one byte, so each field is at most 255 bytes.
 */

export interface PhoenixMessage {
  joinRef: string | null;
  ref: string | null;
  topic: string;
  event: string;
  payload: unknown;
}

export type DecodeResult = { ok: true; message: PhoenixMessage } | { ok: false; error: string; message?: Partial<PhoenixMessage> };

const KIND_PUSH = 0;
const KIND_REPLY = 1;

function refOf(value: unknown): string | null | undefined {
  if (value === null) return null;
  if (typeof value === 'string') return value;
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  return undefined;
}

/** Decodes a text frame; `ok: false` carries whatever could be recovered so the caller can reply with an error. */
export function decodeText(text: string): DecodeResult {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return { ok: false, error: 'frame is not JSON' };
  }
  if (!Array.isArray(parsed) || parsed.length !== 5) return { ok: false, error: 'frame is not a 5-element array' };
  const [joinRefRaw, refRaw, topic, event, payload] = parsed as unknown[];
  const joinRef = refOf(joinRefRaw);
  const ref = refOf(refRaw);
  if (typeof topic !== 'string' || typeof event !== 'string' || joinRef === undefined || ref === undefined) {
    const partial: Partial<PhoenixMessage> = {};
    if (typeof topic === 'string') partial.topic = topic;
    if (typeof event === 'string') partial.event = event;
    if (typeof ref === 'string') partial.ref = ref;
    if (typeof joinRef === 'string') partial.joinRef = joinRef;
    return { ok: false, error: 'frame fields have the wrong types', message: partial };
  }
  return { ok: true, message: { joinRef, ref, topic, event, payload } };
}

/**
 * Decodes a binary push from a client. The client's `binaryEncode` writes
 * `kind=0 | len(join_ref) | len(ref) | len(topic) | len(event) | fields | payload`
 * (with a ref, unlike the server→client push layout); the payload stays a Buffer.
 */
export function decodeBinaryPush(buffer: Buffer): DecodeResult {
  if (buffer.length < 5 || buffer[0] !== KIND_PUSH) return { ok: false, error: 'binary frame is not a push' };
  const joinRefSize = buffer[1] ?? 0;
  const refSize = buffer[2] ?? 0;
  const topicSize = buffer[3] ?? 0;
  const eventSize = buffer[4] ?? 0;
  let offset = 5;
  if (buffer.length < offset + joinRefSize + refSize + topicSize + eventSize) return { ok: false, error: 'binary frame is truncated' };
  const field = (size: number): string => {
    const value = buffer.toString('utf8', offset, offset + size);
    offset += size;
    return value;
  };
  const joinRef = field(joinRefSize);
  const ref = field(refSize);
  const topic = field(topicSize);
  const event = field(eventSize);
  return { ok: true, message: { joinRef: joinRef || null, ref: ref || null, topic, event, payload: buffer.subarray(offset) } };
}

/** Encodes a text frame. */
export function encodeText(message: PhoenixMessage): string {
  return JSON.stringify([message.joinRef, message.ref, message.topic, message.event, message.payload]);
}

function fieldBytes(name: string, value: string): Buffer {
  const bytes = Buffer.from(value, 'utf8');
  if (bytes.length > 255) throw new RangeError(`binary frame field ${name} is longer than 255 bytes`);
  return bytes;
}

/** Encodes a binary reply, which the client surfaces as `{status, response: ArrayBuffer}`. */
export function encodeBinaryReply(joinRef: string | null, ref: string, topic: string, status: 'ok' | 'error', payload: Uint8Array): Buffer {
  const joinRefBytes = fieldBytes('join_ref', joinRef ?? '');
  const refBytes = fieldBytes('ref', ref);
  const topicBytes = fieldBytes('topic', topic);
  const statusBytes = fieldBytes('status', status);
  const header = Buffer.from([KIND_REPLY, joinRefBytes.length, refBytes.length, topicBytes.length, statusBytes.length]);
  return Buffer.concat([header, joinRefBytes, refBytes, topicBytes, statusBytes, payload]);
}
