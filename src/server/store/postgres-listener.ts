/**
 * One LISTEN connection of a server to its PostgreSQL database, outside the
 * pool (a pooled connection would be handed to queries). When the connection
 * drops it reconnects, backing off from 100 ms to 5 s, and then calls
 * `onResync`: notifications sent while it was away are gone.
 *
 * States: idle → listening ⇄ reconnecting → stopped.
 */
import pg from 'pg';

type ListenerState = 'idle' | 'listening' | 'reconnecting' | 'stopped';

export class PostgresListener {
  readonly #url: string;
  readonly #channel: string;
  readonly #handlers: { onMessage: (message: string) => void; onResync: () => void };
  #client: pg.Client | undefined;
  #state: ListenerState = 'idle';
  #timer: NodeJS.Timeout | undefined;
  #failures = 0;

  constructor(url: string, channel: string, handlers: { onMessage: (message: string) => void; onResync: () => void }) {
    this.#url = url;
    this.#channel = channel;
    this.#handlers = handlers;
  }

  /** Connects and listens; rejects when the first connection fails. */
  async start(): Promise<void> {
    if (this.#state !== 'idle') return;
    await this.#connect();
    this.#state = 'listening';
  }

  async stop(): Promise<void> {
    this.#state = 'stopped';
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    const client = this.#client;
    this.#client = undefined;
    await client?.end().catch(() => undefined);
  }

  async #connect(): Promise<void> {
    const client = new pg.Client({ connectionString: this.#url, connectionTimeoutMillis: 10_000 });
    client.on('notification', (message) => {
      if (message.channel === this.#channel && message.payload !== undefined) this.#handlers.onMessage(message.payload);
    });
    const lost = (): void => {
      if (this.#client !== client || this.#state === 'stopped') return;
      this.#client = undefined;
      void client.end().catch(() => undefined);
      this.#state = 'reconnecting';
      this.#scheduleReconnect();
    };
    client.on('error', lost);
    client.on('end', lost);
    try {
      await client.connect();
      // The channel is a constant of ours, never user input.
      await client.query(`LISTEN ${this.#channel}`);
    } catch (error) {
      client.removeAllListeners('end');
      await client.end().catch(() => undefined);
      throw error;
    }
    this.#client = client;
  }

  #scheduleReconnect(): void {
    const delay = Math.min(5_000, 100 * 2 ** this.#failures);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      if (this.#state === 'stopped') return;
      this.#connect().then(
        () => {
          if (this.#state === 'stopped') {
            void this.stop();
            return;
          }
          this.#failures = 0;
          this.#state = 'listening';
          this.#handlers.onResync();
        },
        () => {
          this.#failures += 1;
          if (this.#state !== 'stopped') this.#scheduleReconnect();
        },
      );
    }, delay);
    this.#timer.unref();
  }
}
