/**
 * Tells a run's reporter when its channel drops. A push sent before a drop
 * never gets its reply: the phoenix client resends nothing, and waits out the
 * push's timeout (30 s by default) before it says so. With this, a push that
 * is waiting when the channel errors is known lost at once, and the reporter
 * resends it (under `idempotent_events`): the phoenix client holds a push made
 * while the channel is down and sends it once the channel has rejoined.
 */
import type { Channel } from 'phoenix';

export class ChannelDrops {
  readonly #channel: Channel;
  readonly #ref: number;
  #next: PromiseWithResolvers<void> = Promise.withResolvers<void>();
  readonly #closed: AbortSignal | undefined;
  readonly #onClosed = (): void => this.#next.resolve();

  constructor(channel: Channel, closed?: AbortSignal) {
    this.#channel = channel;
    this.#closed = closed;
    this.#ref = channel.onError(() => {
      if (this.closed) return;
      const dropped = this.#next;
      this.#next = Promise.withResolvers<void>();
      dropped.resolve();
    });
    if (closed?.aborted === true) this.#next.resolve();
    else closed?.addEventListener('abort', this.#onClosed, { once: true });
  }

  /** The worker closed its connection: nothing sent on this channel gets a reply any more. */
  get closed(): boolean {
    return this.#closed?.aborted === true;
  }

  /** Settles at the channel's next drop: give it to a push sent now. */
  get next(): Promise<void> {
    return this.#next.promise;
  }

  /** Stops listening (the run is over). */
  close(): void {
    this.#channel.off('phx_error', this.#ref);
    this.#closed?.removeEventListener('abort', this.#onClosed);
  }
}
