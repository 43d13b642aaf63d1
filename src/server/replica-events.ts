/**
 * What the servers sharing one PostgreSQL database tell each other, so each
 * event reaches the server that needs it: a run became claimable (wake the
 * workers connected here), a held run was cancelled (push `run:cancel` if
 * its worker is connected here), a run ended (answer a `?wait` held here).
 * Carried by the store's publish/subscribe (NOTIFY/LISTEN); on SQLite there
 * is one server and nothing is sent.
 *
 * Each server tags what it sends with its own id and ignores its own
 * messages: it already acted on them locally. Messages are small JSON
 * objects, far below NOTIFY's 8000-byte limit; anything else is dropped.
 *
 * States: idle → listening → stopped.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { Store } from './store/store.ts';

export type ReplicaEvent =
  | { kind: 'work'; queue: string }
  | { kind: 'cancel'; runId: string; workerId: string }
  | { kind: 'ended'; runId: string };

export interface ReplicaEventHandlers {
  onEvent: (event: ReplicaEvent) => void;
  /** The listener reconnected: events may have been missed. */
  onResync: () => void;
}

type EventsState = 'idle' | 'listening' | 'stopped';

const MAX_FIELD = 512;

function field(value: unknown): string | undefined {
  return typeof value === 'string' && value.length > 0 && value.length <= MAX_FIELD ? value : undefined;
}

/** The event in a message from another server, or undefined for our own or a malformed one. */
export function decodeReplicaEvent(message: string, ownId: string): ReplicaEvent | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(message);
  } catch {
    return undefined;
  }
  if (typeof parsed !== 'object' || parsed === null) return undefined;
  const record = parsed as Record<string, unknown>;
  if (record['from'] === ownId) return undefined;
  const queue = field(record['queue']);
  const runId = field(record['runId']);
  const workerId = field(record['workerId']);
  if (record['kind'] === 'work' && queue) return { kind: 'work', queue };
  if (record['kind'] === 'cancel' && runId && workerId) return { kind: 'cancel', runId, workerId };
  if (record['kind'] === 'ended' && runId) return { kind: 'ended', runId };
  return undefined;
}

export class ReplicaEvents {
  readonly id = randomUUID();
  readonly #store: Store;
  readonly #logger: Logger;
  #unsubscribe: (() => Promise<void>) | undefined;
  #state: EventsState = 'idle';

  constructor(options: { store: Store; logger: Logger }) {
    this.#store = options.store;
    this.#logger = options.logger;
  }

  /** Starts listening (PostgreSQL); rejects when the listening connection cannot be made. */
  async start(handlers: ReplicaEventHandlers): Promise<void> {
    if (this.#state !== 'idle') return;
    this.#state = 'listening';
    this.#unsubscribe = await this.#store.subscribe({
      onMessage: (message) => {
        const event = decodeReplicaEvent(message, this.id);
        if (event && this.#state === 'listening') handlers.onEvent(event);
      },
      onResync: () => {
        this.#logger.warn('replica events reconnected; resyncing');
        if (this.#state === 'listening') handlers.onResync();
      },
    });
  }

  async stop(): Promise<void> {
    this.#state = 'stopped';
    const unsubscribe = this.#unsubscribe;
    this.#unsubscribe = undefined;
    await unsubscribe?.();
  }

  /**
   * Sends `event` to the other servers. With a transaction's handle as
   * `store`, it goes out when that transaction commits, never before the
   * change it announces is visible. A failure is logged, not thrown: workers
   * still find the run on their next claim.
   */
  publish(event: ReplicaEvent, store: Store = this.#store): void {
    if (this.#state === 'stopped' || store.kind !== 'postgres') return;
    store.publish(JSON.stringify({ ...event, from: this.id })).catch((error: unknown) => {
      this.#logger.warn({ err: error, event: event.kind }, 'replica event not sent');
    });
  }
}
