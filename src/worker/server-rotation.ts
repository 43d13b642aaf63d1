/**
 * Failover between replicas of one queue: the server URLs a worker was given,
 * tried in turn, one more each time phoenix schedules a reconnect, so a worker
 * whose server is gone lands on another.
 */
import { LanesError } from '../errors/lanes-error.ts';

export class ServerRotation {
  readonly #urls: readonly string[];
  #index = 0;
  /** The URL of the connection that just closed: phoenix picks the next delay (and so the next server) before it reports the close. */
  #closed: string | null = null;

  constructor(urls: readonly string[]) {
    if (urls.length === 0) throw new LanesError('NO_SERVER_URL', 'no server URL to connect to');
    this.#urls = urls;
  }

  /** The server URL the socket connects (or reconnects) to. */
  get current(): string {
    return this.#urls[this.#index] ?? '';
  }

  /** The server whose connection closed last (the current one before any). */
  get closed(): string {
    return this.#closed ?? this.current;
  }

  /** A reconnect is scheduled: moves to the next URL and returns it, or null with only one. */
  advance(): string | null {
    this.#closed = this.current;
    if (this.#urls.length < 2) return null;
    this.#index = (this.#index + 1) % this.#urls.length;
    return this.current;
  }
}
