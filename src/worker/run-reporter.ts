/**
 * Sends one run's events on its channel strictly in order, each awaiting its
 * reply (PROTOCOL.md, `run:<id>`). Engine events arrive synchronously and
 * faster than the server answers, so they queue here.
 *
 * - Log lines that queue up behind a slow reply are merged into one
 *   `run:batch_logs` push when `batchLogs` is on; otherwise each is a `run:log`.
 * - A push whose reply times out, or is lost because the connection dropped
 *   while it waited (channel-drops.ts), is resent with the same payload (and
 *   so the same keys) only when the server offers `idempotent_events`; the
 *   resend goes out once the channel has rejoined. Against Lightning a resend
 *   could duplicate rows, so the event is logged and the run goes on. A
 *   fetch whose reply was lost is asked again (a read changes nothing).
 * - A rejected event is logged with the run id and the reply; a rejected
 *   `run:complete` is an error, never silently dropped.
 * - With `joined` (the run started before its channel's join was answered,
 *   `claim_plans`) nothing is pushed until the join succeeds; if it fails,
 *   every event is dropped and every request rejected.
 * - Once the worker closed its connection (`closed`, at stop) an event
 *   waiting for its reply, and every event after it, is given up at once.
 */
import type { Channel } from 'phoenix';
import type { Logger } from 'pino';
import { RUN_BATCH_LOGS, RUN_COMPLETE, RUN_LOG } from '../protocol/events.ts';
import type { BatchLogsPayload, LogLine } from '../protocol/messages.ts';
import { PushLostError, PushRejectedError, PushTimeoutError } from './channel-errors.ts';
import { ChannelDrops } from './channel-drops.ts';
import { READ_SENDS, pushAndWait } from './push.ts';

/** Log lines merged into one batch at most; a longer run of lines makes several batches. */
const MAX_BATCH_LINES = 200;
/** Sends of one event under `idempotent_events`, the first included. */
const MAX_SENDS = 5;

type QueuedEvent =
  | { kind: 'event'; event: string; payload: object }
  | { kind: 'batch'; lines: LogLine[]; key: string | undefined }
  /** A fetch whose reply the caller needs (fetch:credential): sent in turn, never resent. */
  | { kind: 'request'; event: string; payload: object; resolve: (reply: unknown) => void; reject: (error: unknown) => void };

export interface RunReporterOptions {
  runId: string;
  channel: Channel;
  messageTimeoutMs: number;
  batchLogs: boolean;
  idempotent: boolean;
  logger: Logger;
  /** Makes a key for a batch under `idempotent_events`. */
  batchKey: () => string | undefined;
  /** Resolves true once the run channel is joined, false when the join failed; absent: joined already. */
  joined?: Promise<boolean>;
  /** Aborted when the worker closes its connection (stop): nothing is resent after that. */
  closed?: AbortSignal;
}

export interface EventFailure {
  event: string;
  error: unknown;
}

export class RunReporter {
  readonly #options: RunReporterOptions;
  readonly #queue: QueuedEvent[] = [];
  #draining: Promise<void> | null = null;
  readonly #failures: EventFailure[] = [];
  #completeAccepted = false;
  readonly #drops: ChannelDrops;

  constructor(options: RunReporterOptions) {
    this.#options = options;
    this.#drops = new ChannelDrops(options.channel, options.closed);
  }

  /** Stops watching the channel; call once the run's events are drained. */
  close(): void {
    this.#drops.close();
  }

  /** Events that could not be delivered, in order. */
  get failures(): readonly EventFailure[] {
    return this.#failures;
  }

  /** Whether the server accepted `run:complete`. */
  get completeAccepted(): boolean {
    return this.#completeAccepted;
  }

  send(event: string, payload: object): void {
    this.#queue.push({ kind: 'event', event, payload });
    this.#kick();
  }

  /**
   * Sends an event in its turn behind everything queued before it and
   * resolves with its reply (rejects with the push's error). A fetch is
   * never resent: its caller decides what a failure means.
   */
  request(event: string, payload: object): Promise<unknown> {
    return new Promise((resolve, reject) => {
      this.#queue.push({ kind: 'request', event, payload, resolve, reject });
      this.#kick();
    });
  }

  log(line: LogLine): void {
    if (this.#options.batchLogs) {
      const last = this.#queue.at(-1);
      if (last !== undefined && last.kind === 'batch' && last.lines.length < MAX_BATCH_LINES) {
        last.lines.push(line);
      } else {
        this.#queue.push({ kind: 'batch', lines: [line], key: this.#options.batchKey() });
      }
    } else {
      this.#queue.push({ kind: 'event', event: RUN_LOG, payload: line });
    }
    this.#kick();
  }

  /** Resolves once every queued event got its reply, was rejected, or gave up. */
  async drained(): Promise<void> {
    while (this.#draining !== null) await this.#draining;
  }

  #kick(): void {
    if (this.#draining !== null) return;
    this.#draining = this.#drain().finally(() => {
      this.#draining = null;
      // An event sent after the drain's last shift and before this callback found #draining set and
      // did not start a drain of its own: start one now, or it would never be pushed (and drained()
      // would return with it still queued).
      if (this.#queue.length > 0) this.#kick();
    });
  }

  async #drain(): Promise<void> {
    if (this.#options.joined !== undefined && !(await this.#options.joined)) {
      // Not joined: nothing can be pushed. The caller (run-attempt.ts) kills the run and logs it once.
      for (const dropped of this.#queue.splice(0)) {
        if (dropped.kind === 'request') dropped.reject(new Error('the run channel could not be joined'));
      }
      return;
    }
    for (let next = this.#queue.shift(); next !== undefined; next = this.#queue.shift()) {
      if (next.kind === 'batch') {
        const payload: BatchLogsPayload = { run_id: this.#options.runId, logs: next.lines };
        if (next.key !== undefined) payload.log_id = next.key;
        await this.#deliver(RUN_BATCH_LOGS, payload);
      } else if (next.kind === 'request') {
        const { resolve, reject } = next;
        await this.#fetch(next.event, next.payload).then(resolve, reject);
      } else {
        await this.#deliver(next.event, next.payload);
      }
    }
  }

  /** A fetch (a read): asked again when its reply was lost to a dropped connection, never after a timeout. */
  async #fetch(event: string, payload: object): Promise<unknown> {
    const { channel, messageTimeoutMs } = this.#options;
    for (let send = 1; ; send++) {
      try {
        return await pushAndWait(channel, event, payload, messageTimeoutMs, this.#drops.next);
      } catch (error) {
        if (!(error instanceof PushLostError) || this.#drops.closed || send >= READ_SENDS) throw error;
      }
    }
  }

  async #deliver(event: string, payload: object): Promise<void> {
    const { channel, messageTimeoutMs, idempotent, logger } = this.#options;
    for (let send = 1; ; send++) {
      try {
        await pushAndWait(channel, event, payload, messageTimeoutMs, this.#drops.next);
        if (event === RUN_COMPLETE) this.#completeAccepted = true;
        return;
      } catch (error) {
        if (this.#drops.closed) {
          // The worker stopped with this run unreported: the server's lease brings the run back.
          this.#failures.push({ event, error });
          logger.warn({ event }, 'run event not delivered: the worker closed its connection');
          return;
        }
        if ((error instanceof PushTimeoutError || error instanceof PushLostError) && idempotent && send < MAX_SENDS) {
          logger.warn({ event, send, lost: error instanceof PushLostError }, 'run event got no reply; resending (server is idempotent)');
          continue;
        }
        this.#failures.push({ event, error });
        const response = error instanceof PushRejectedError ? error.response : undefined;
        if (event === RUN_COMPLETE) {
          logger.error({ event, response, err: error }, 'run:complete was not accepted');
        } else {
          logger.error({ event, response, err: error }, 'run event was not delivered');
        }
        return;
      }
    }
  }
}
