/**
 * The seam between the Phoenix socket layer and the protocol's channels.
 * A `ChannelRouter` decides whether a `phx_join` succeeds and returns the
 * `Channel` that will receive the topic's events; the socket layer does
 * framing, refs, ordering and join state, and knows nothing of runs.
 */

/** A reply to one client push: JSON, or a binary payload sent as a binary frame. */
export type ChannelReply =
  | { status: 'ok' | 'error'; response: unknown }
  | { status: 'ok' | 'error'; binary: Uint8Array };

/**
 * A reply given later (a held claim, held-claims.ts): the topic's next event
 * is handled at once, and the reply goes out when `later` settles, if the
 * topic is still joined by the same join. `later` must not reject.
 */
export interface DeferredReply {
  later: Promise<ChannelReply>;
}

/** Why a channel stops receiving events. */
export type ChannelEndReason = 'leave' | 'closed' | 'rejoin' | 'server';

export interface Channel {
  /** Handles one client event; events of one topic arrive strictly one at a time, in order. */
  handleIn(event: string, payload: unknown): Promise<ChannelReply | DeferredReply> | ChannelReply | DeferredReply;
  /** The topic was left, the socket closed, or the client joined it again. */
  terminate(reason: ChannelEndReason): void;
}

/** What a channel may do towards its client. */
export interface ChannelPeer {
  /** A server-assigned id of the socket connection. */
  readonly connectionId: string;
  /** The worker id from the socket's token. */
  readonly workerId: string;
  /** Pushes an event on this topic (with the current join ref). */
  push(event: string, payload: unknown): void;
  /** Closes this topic from the server side (`phx_close`). */
  close(): void;
}

export type JoinResult = { ok: true; channel: Channel; response: unknown } | { ok: false; response: unknown };

export interface ChannelRouter {
  join(topic: string, payload: unknown, peer: ChannelPeer): Promise<JoinResult>;
}

export const ok = (response: unknown = {}): ChannelReply => ({ status: 'ok', response });
export const error = (response: unknown): ChannelReply => ({ status: 'error', response });
