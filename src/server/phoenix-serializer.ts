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

const KIND_PUSH = 0;
const KIND_REPLY = 1;

function refOf(value: unknown): string | null | undefined {
  if (value === null) return null;
  if (typeof value === 'string') return value;
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  return undefined;
}

/** The addressing fields recovered from a frame that could not be decoded in full, for an error reply. */
export interface FrameAddress {
  joinRef: string | null;
  ref: string;
  /** The frame's topic when it was a string; the caller replies on `phoenix` otherwise. */
  topic: string | undefined;
}

export type DecodeResult = { ok: true; message: PhoenixMessage } | { ok: false; error: string; address?: FrameAddress };

/** The address of a decoded JSON array, when its second element is a usable ref. */
function addressOf(elements: readonly unknown[]): FrameAddress | undefined {
  const ref = refOf(elements[1]);
  if (typeof ref !== 'string') return undefined;
  const joinRef = refOf(elements[0]);
  const topic = elements[2];
  return { joinRef: typeof joinRef === 'string' ? joinRef : null, ref, topic: typeof topic === 'string' ? topic : undefined };
}

/**
 * Decodes a text frame. A frame that is a JSON array with a usable ref in
 * second place but is otherwise malformed (wrong length, wrong field types)
 * comes back `ok: false` with its address, so the caller can reply with an
 * error instead of leaving the client waiting for a timeout.
 */
export function decodeText(text: string): DecodeResult {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return { ok: false, error: 'frame is not JSON' };
  }
  if (!Array.isArray(parsed)) return { ok: false, error: 'frame is not a 5-element array' };
  const elements = parsed as unknown[];
  const address = addressOf(elements);
  const withAddress = (error: string): DecodeResult => (address ? { ok: false, error, address } : { ok: false, error });
  if (elements.length !== 5) return withAddress('frame is not a 5-element array');
  const [joinRefRaw, refRaw, topic, event, payload] = elements;
  const joinRef = refOf(joinRefRaw);
  const ref = refOf(refRaw);
  if (typeof topic !== 'string' || typeof event !== 'string' || joinRef === undefined || ref === undefined) {
    return withAddress('frame fields have the wrong types');
  }
  return { ok: true, message: { joinRef, ref, topic, event, payload } };
}

/** Bytes of a frame's head that `peekTextAddress` reads: refs and topics are short. */
const PEEK_BYTES = 4096;
const SCALAR = /^(?:null|true|false|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)/;

/**
 * Reads the address (`join_ref`, `ref`, topic) from the head of a text frame
 * without parsing the rest: an oversized frame is answered `frame_too_large`
 * without paying for a parse of megabytes of payload.
 */
export function peekTextAddress(buffer: Buffer): FrameAddress | undefined {
  const head = buffer.toString('utf8', 0, Math.min(buffer.length, PEEK_BYTES));
  let index = 0;
  const skipSpace = (): void => {
    while (index < head.length && /\s/.test(head[index] ?? '')) index += 1;
  };
  skipSpace();
  if (head[index] !== '[') return undefined;
  index += 1;
  const elements: unknown[] = [];
  while (elements.length < 3) {
    skipSpace();
    const rest = head.slice(index);
    let token: string | undefined;
    if (rest.startsWith('"')) {
      let end = 1;
      while (end < rest.length && rest[end] !== '"') end += rest[end] === '\\' ? 2 : 1;
      if (end >= rest.length) break;
      token = rest.slice(0, end + 1);
    } else {
      token = SCALAR.exec(rest)?.[0];
    }
    if (token === undefined) break;
    try {
      elements.push(JSON.parse(token));
    } catch {
      break;
    }
    index += token.length;
    skipSpace();
    if (head[index] !== ',') break;
    index += 1;
  }
  return addressOf(elements);
}

/** Reads the address from the header of a binary push (see `decodeBinaryPush`), for the same purpose. */
export function peekBinaryAddress(buffer: Buffer): FrameAddress | undefined {
  const decoded = decodeBinaryHeader(buffer);
  if (!decoded || decoded.ref === null) return undefined;
  return { joinRef: decoded.joinRef, ref: decoded.ref, topic: decoded.topic };
}

/**
 * Decodes a binary push from a client. The client's `binaryEncode` writes
 * `kind=0 | len(join_ref) | len(ref) | len(topic) | len(event) | fields | payload`
 * (with a ref, unlike the server→client push layout); the payload stays a Buffer.
 */
export function decodeBinaryPush(buffer: Buffer): DecodeResult {
  const header = decodeBinaryHeader(buffer);
  if (!header) return { ok: false, error: buffer.length > 0 && buffer[0] === KIND_PUSH ? 'binary frame is truncated' : 'binary frame is not a push' };
  const { joinRef, ref, topic, event, payloadOffset } = header;
  return { ok: true, message: { joinRef, ref, topic, event, payload: buffer.subarray(payloadOffset) } };
}

function decodeBinaryHeader(buffer: Buffer): { joinRef: string | null; ref: string | null; topic: string; event: string; payloadOffset: number } | undefined {
  if (buffer.length < 5 || buffer[0] !== KIND_PUSH) return undefined;
  const joinRefSize = buffer[1] ?? 0;
  const refSize = buffer[2] ?? 0;
  const topicSize = buffer[3] ?? 0;
  const eventSize = buffer[4] ?? 0;
  let offset = 5;
  if (buffer.length < offset + joinRefSize + refSize + topicSize + eventSize) return undefined;
  const field = (size: number): string => {
    const value = buffer.toString('utf8', offset, offset + size);
    offset += size;
    return value;
  };
  const joinRef = field(joinRefSize);
  const ref = field(refSize);
  const topic = field(topicSize);
  const event = field(eventSize);
  return { joinRef: joinRef || null, ref: ref || null, topic, event, payloadOffset: offset };
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
