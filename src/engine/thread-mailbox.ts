/**
 * What a run's thread reports in its first turn, written to memory it shares
 * with its child instead of posted.
 *
 * Between taking its run and the job's first line, a thread reports that it
 * started, the runtime's first log lines and the step's start. Each post
 * wakes the child's main thread, which passes it on over IPC and wakes the
 * worker: two processes set to work on a two-core machine while the run's
 * thread needs a core to reach the job's first line. Measured with the
 * engine alone, posting those reports cost the first line 0.3-0.4 ms.
 *
 * So during its first turn the thread appends them here, and posts nothing
 * until that turn ends (its first `setImmediate`), it asks for a credential
 * or its run ends. Posting anything closes the mailbox, so what it holds is
 * always older than any message posted. The child reads what is here before anything the thread
 * posts (so the order is kept); 5 ms after the run reached the thread, then
 * every `FIRST_TURN_POLL_MS` while the turn lasts (a job that computes from
 * its first line still shows its step); and when the thread dies. A run
 * killed from outside (its time-out, its resident memory, a cancel) within
 * those first 5 ms is reported with its start and its end, without the step
 * it had started: the parent decides that end, and it does not wait.
 *
 * One writer (the run's thread), one reader (its child), one run: the mailbox
 * only fills. A report that does not fit (a long log line) closes it: that
 * report and every later one is posted, after what the mailbox holds.
 *
 * Layout: a 32-bit count of the bytes committed, then records, each a 32-bit
 * length and that many bytes of JSON. A record is readable once the count
 * covers it (`Atomics.store` after the bytes are written).
 */

/**
 * Bytes of one thread's mailbox: several times a first turn's usual reports
 * (about 1 KiB: its start, two runtime lines, the step's start). Kept small
 * because every run's thread gets a new one, and a dead thread's buffer is
 * freed only when the child next collects its garbage: at 64 KiB (each one
 * zeroed in full when it is made) the worker's tree grew by 364 MB over the
 * bench's 1000 runs, against 293 MB at 16 KiB.
 */
export const MAILBOX_BYTES = 16 * 1024;
/** While the first turn lasts, the child reads the mailbox this often; the first read after a quarter of it. */
export const FIRST_TURN_POLL_MS = 20;

const HEADER_BYTES = 4;
const LENGTH_BYTES = 4;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function createMailbox(): SharedArrayBuffer {
  return new SharedArrayBuffer(MAILBOX_BYTES);
}

/** The thread's end: appends reports until it is closed or full. */
export class MailboxWriter {
  readonly #committed: Int32Array;
  readonly #bytes: Uint8Array;
  readonly #view: DataView;
  #end = HEADER_BYTES;
  #open = false;

  constructor(buffer: SharedArrayBuffer) {
    this.#committed = new Int32Array(buffer, 0, 1);
    this.#bytes = new Uint8Array(buffer);
    this.#view = new DataView(buffer);
  }

  /** Appends `message`; false when the mailbox is closed or it does not fit (then it is closed). */
  write(message: unknown): boolean {
    if (!this.#open) return false;
    const json = JSON.stringify(message);
    const at = this.#end + LENGTH_BYTES;
    // A UTF-16 unit is at most 3 bytes of UTF-8: beyond the room left it cannot fit.
    const { read, written } = at < this.#bytes.length ? encoder.encodeInto(json, this.#bytes.subarray(at)) : { read: 0, written: 0 };
    if (read < json.length) {
      this.#open = false;
      return false;
    }
    this.#view.setUint32(this.#end, written);
    this.#end = at + written;
    Atomics.store(this.#committed, 0, this.#end);
    return true;
  }

  /** Opened once, when the thread takes its run. */
  open(): void {
    if (this.#end === HEADER_BYTES) this.#open = true;
  }

  /** Nothing more is written: the thread posts from now on. */
  close(): void {
    this.#open = false;
  }
}

/** The child's end: reads each committed report once, in order. */
export class MailboxReader {
  readonly #committed: Int32Array;
  readonly #bytes: Uint8Array;
  readonly #view: DataView;
  #read = HEADER_BYTES;

  constructor(buffer: SharedArrayBuffer) {
    this.#committed = new Int32Array(buffer, 0, 1);
    this.#bytes = new Uint8Array(buffer);
    this.#view = new DataView(buffer);
  }

  /**
   * The reports committed since the last call. A record that is not valid
   * JSON (the thread's memory is job code's too) ends the reading: the caller
   * treats it as a message that fits no rule.
   */
  take(): unknown[] {
    const end = Atomics.load(this.#committed, 0);
    const messages: unknown[] = [];
    while (this.#read + LENGTH_BYTES <= end) {
      const length = this.#view.getUint32(this.#read);
      const from = this.#read + LENGTH_BYTES;
      if (from + length > end) break;
      this.#read = from + length;
      // Copied out of the shared memory before decoding: the decoder takes no shared buffers.
      const text = decoder.decode(this.#bytes.slice(from, from + length));
      try {
        messages.push(JSON.parse(text) as unknown);
      } catch {
        messages.push(null);
        this.#read = end;
        break;
      }
    }
    return messages;
  }
}
