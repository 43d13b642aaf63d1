/**
 * One worker's WebSocket, speaking the Phoenix V2 protocol: heartbeats,
 * `phx_join`/`phx_leave`, per-topic join state and in-order dispatch to the
 * topic's `Channel`.
 *
 * States: open → closed. `close()` (or the peer closing) terminates every
 * joined channel once; frames after that are ignored. The idle timer belongs
 * to the open state (re-armed by every frame) and is cleared as it ends.
 *
 * Events of one topic are handled strictly one after another (a promise chain
 * per topic) because the run channel's state machine depends on order; topics
 * run concurrently with each other.
 */
import type { Logger } from 'pino';
import type { WebSocket, RawData } from 'ws';
import {
  HEARTBEAT,
  PHOENIX_TOPIC,
  PHX_CLOSE,
  PHX_JOIN,
  PHX_LEAVE,
  PHX_REPLY,
} from '../protocol/index.ts';
import { StateMachine } from '../state-machine.ts';
import type { Channel, ChannelPeer, ChannelReply, ChannelRouter, DeferredReply } from './phoenix-channel.ts';
import { exceedsDepth } from './json-depth.ts';
import { decodeBinaryPush, decodeText, encodeBinaryReply, encodeText, peekBinaryAddress, peekTextAddress } from './phoenix-serializer.ts';
import type { FrameAddress, PhoenixMessage } from './phoenix-serializer.ts';

type ConnectionState = { kind: 'open'; idleTimer: NodeJS.Timeout | undefined } | { kind: 'closed' };

interface TopicState {
  joinRef: string | null;
  /** null while the join is being decided. */
  channel: Channel | null;
}

export interface PhoenixConnectionOptions {
  id: string;
  workerId: string;
  socket: WebSocket;
  router: ChannelRouter;
  logger: Logger;
  idleTimeoutMs: number;
  /** The protocol's frame limit: a bigger frame (up to the socket's hard ceiling) is answered `frame_too_large`. */
  maxFrameBytes: number;
}

export class PhoenixConnection {
  readonly id: string;
  readonly workerId: string;
  readonly #socket: WebSocket;
  readonly #router: ChannelRouter;
  readonly #logger: Logger;
  readonly #idleTimeoutMs: number;
  readonly #maxFrameBytes: number;
  readonly #topics = new Map<string, TopicState>();
  readonly #tails = new Map<string, Promise<void>>();
  readonly #state: StateMachine<ConnectionState>;
  readonly #closedCallbacks: Array<() => void> = [];

  constructor(options: PhoenixConnectionOptions) {
    this.id = options.id;
    this.workerId = options.workerId;
    this.#socket = options.socket;
    this.#router = options.router;
    this.#logger = options.logger;
    this.#idleTimeoutMs = options.idleTimeoutMs;
    this.#maxFrameBytes = options.maxFrameBytes;
    this.#state = new StateMachine<ConnectionState>({
      name: 'phoenix connection',
      initial: { kind: 'open', idleTimer: undefined },
      transitions: { open: ['closed'], closed: [] },
      logger: this.#logger,
    });
  }

  get state(): ConnectionState['kind'] {
    return this.#state.kind;
  }

  /** Wires the socket's events; call once right after the upgrade. */
  attach(): void {
    this.#socket.on('message', (data: RawData, isBinary: boolean) => this.#onMessage(data, isBinary));
    this.#socket.on('close', () => this.#onClosed());
    this.#socket.on('error', (error) => this.#logger.warn({ err: error }, 'socket error'));
    this.#armIdleTimer();
  }

  /** Called once when the connection is gone, whichever side closed it. */
  onClosed(callback: () => void): void {
    this.#closedCallbacks.push(callback);
  }

  /** Closes the socket (1001 going away by default); channels are terminated when the close completes. */
  close(code = 1001, reason = 'server shutting down'): void {
    if (this.#state.kind === 'closed') return;
    this.#socket.close(code, reason);
  }

  /** Forces the socket shut without a closing handshake. */
  terminate(): void {
    this.#socket.terminate();
  }

  #armIdleTimer(): void {
    const open = this.#state.when('open');
    if (!open) return;
    if (open.idleTimer) clearTimeout(open.idleTimer);
    open.idleTimer = setTimeout(() => {
      this.#logger.warn('socket idle, closing');
      this.close(1000, 'idle');
    }, this.#idleTimeoutMs);
    open.idleTimer.unref();
  }

  #onClosed(): void {
    const open = this.#state.when('open');
    if (!open) return;
    if (open.idleTimer) clearTimeout(open.idleTimer);
    this.#state.to({ kind: 'closed' });
    for (const [topic, topicState] of this.#topics) {
      this.#endChannel(topic, topicState, 'closed');
    }
    this.#topics.clear();
    for (const callback of this.#closedCallbacks) {
      try {
        callback();
      } catch (error) {
        this.#logger.error({ err: error }, 'connection close callback failed');
      }
    }
  }

  #endChannel(topic: string, topicState: TopicState, reason: 'leave' | 'closed' | 'rejoin' | 'server'): void {
    try {
      topicState.channel?.terminate(reason);
    } catch (error) {
      this.#logger.error({ err: error, topic }, 'channel terminate failed');
    }
  }

  #send(data: string | Buffer): void {
    if (this.#state.kind !== 'open' || this.#socket.readyState !== this.#socket.OPEN) return;
    this.#socket.send(data);
  }

  #sendMessage(message: PhoenixMessage): void {
    this.#send(encodeText(message));
  }

  #reply(message: Pick<PhoenixMessage, 'joinRef' | 'ref' | 'topic'>, reply: ChannelReply): void {
    if (message.ref === null) return;
    if ('binary' in reply) {
      this.#send(encodeBinaryReply(message.joinRef, message.ref, message.topic, reply.status, reply.binary));
      return;
    }
    this.#sendMessage({
      joinRef: message.joinRef,
      ref: message.ref,
      topic: message.topic,
      event: PHX_REPLY,
      payload: { status: reply.status, response: reply.response },
    });
  }

  #onMessage(data: RawData, isBinary: boolean): void {
    if (this.#state.kind !== 'open') return;
    this.#armIdleTimer();
    const buffer = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as ArrayBuffer);
    if (buffer.length > this.#maxFrameBytes) {
      // Over the protocol limit but under the socket's hard ceiling: answer it
      // from the frame's head, without parsing (or keeping) the payload.
      const address = isBinary ? peekBinaryAddress(buffer) : peekTextAddress(buffer);
      this.#logger.warn({ workerId: this.workerId, bytes: buffer.length, limit: this.#maxFrameBytes, topic: address?.topic }, 'oversized frame refused');
      if (address) this.#replyError(address, 'frame_too_large');
      return;
    }
    const decoded = isBinary ? decodeBinaryPush(buffer) : decodeText(buffer.toString('utf8'));
    if (!decoded.ok) {
      if (decoded.address) {
        this.#replyError(decoded.address, decoded.error);
      } else {
        // Nothing to address a reply to: drop it, keep the connection.
        this.#logger.warn({ workerId: this.workerId, error: decoded.error, bytes: buffer.length, binary: isBinary }, 'unparseable frame dropped');
      }
      return;
    }
    if (!isBinary && exceedsDepth(decoded.message.payload)) {
      // Refused before any handler walks it: a recursive walk would overflow the stack.
      this.#reply(decoded.message, { status: 'error', response: { reason: 'payload_too_deep' } });
      return;
    }
    if (isBinary && decoded.message.topic !== PHOENIX_TOPIC) {
      // No protocol event carries a binary payload from the worker.
      this.#reply(decoded.message, { status: 'error', response: { reason: 'binary payloads are not accepted' } });
      return;
    }
    this.#dispatch(decoded.message);
  }

  /** Answers a frame that was refused before dispatch; without a string topic the reply goes on `phoenix`. */
  #replyError(address: FrameAddress, reason: string): void {
    this.#reply({ joinRef: address.joinRef, ref: address.ref, topic: address.topic ?? PHOENIX_TOPIC }, { status: 'error', response: { reason } });
  }

  #dispatch(message: PhoenixMessage): void {
    const { topic, event } = message;
    if (topic === PHOENIX_TOPIC) {
      if (event === HEARTBEAT) this.#reply(message, { status: 'ok', response: {} });
      else this.#reply(message, { status: 'error', response: { reason: 'unknown event' } });
      return;
    }
    if (event === PHX_JOIN) {
      this.#enqueue(topic, () => this.#join(message));
      return;
    }
    const topicState = this.#topics.get(topic);
    if (!topicState) {
      this.#reply(message, { status: 'error', response: { reason: 'unmatched topic' } });
      return;
    }
    if (event === PHX_LEAVE) {
      this.#enqueue(topic, () => {
        const current = this.#topics.get(topic);
        if (current) {
          this.#topics.delete(topic);
          this.#endChannel(topic, current, 'leave');
        }
        this.#reply(message, { status: 'ok', response: {} });
      });
      return;
    }
    this.#enqueue(topic, async () => {
      const current = this.#topics.get(topic);
      // The join may have failed, or the topic been left, while this event waited its turn.
      if (!current || current.channel === null) {
        this.#reply(message, { status: 'error', response: { reason: 'unmatched topic' } });
        return;
      }
      let reply: ChannelReply | DeferredReply;
      try {
        reply = await current.channel.handleIn(event, message.payload);
      } catch (error) {
        this.#logger.error({ err: error, topic, event }, 'channel event handler failed');
        reply = { status: 'error', response: { reason: 'internal error' } };
      }
      if (!('later' in reply)) {
        this.#reply(message, reply);
        return;
      }
      // Not awaited: the topic's next events go on; the reply follows when it is ready, to the same join only.
      void reply.later.then((late) => {
        if (this.#topics.get(topic) === current) this.#reply(message, late);
      });
    });
  }

  async #join(message: PhoenixMessage): Promise<void> {
    const { topic } = message;
    const previous = this.#topics.get(topic);
    if (previous) {
      // Phoenix's rule: a second join of a joined topic closes the first.
      this.#topics.delete(topic);
      this.#endChannel(topic, previous, 'rejoin');
      this.#sendMessage({ joinRef: previous.joinRef, ref: previous.joinRef, topic, event: PHX_CLOSE, payload: {} });
    }
    const topicState: TopicState = { joinRef: message.joinRef, channel: null };
    this.#topics.set(topic, topicState);
    const peer: ChannelPeer = {
      connectionId: this.id,
      workerId: this.workerId,
      push: (event, payload) => {
        if (this.#topics.get(topic) !== topicState) return;
        this.#sendMessage({ joinRef: topicState.joinRef, ref: null, topic, event, payload });
      },
      close: () => {
        if (this.#topics.get(topic) !== topicState) return;
        this.#topics.delete(topic);
        this.#endChannel(topic, topicState, 'server');
        this.#sendMessage({ joinRef: topicState.joinRef, ref: topicState.joinRef, topic, event: PHX_CLOSE, payload: {} });
      },
    };
    let result;
    try {
      result = await this.#router.join(topic, message.payload, peer);
    } catch (error) {
      this.#logger.error({ err: error, topic }, 'channel join failed');
      result = { ok: false as const, response: { reason: 'internal error' } };
    }
    if (this.#state.kind !== 'open' || this.#topics.get(topic) !== topicState) {
      if (result.ok) result.channel.terminate('closed');
      return;
    }
    if (!result.ok) {
      this.#topics.delete(topic);
      this.#reply(message, { status: 'error', response: result.response });
      return;
    }
    topicState.channel = result.channel;
    this.#reply(message, { status: 'ok', response: result.response });
  }

  #enqueue(topic: string, task: () => void | Promise<void>): void {
    const tail = this.#tails.get(topic) ?? Promise.resolve();
    const next = tail.then(task).catch((error: unknown) => {
      this.#logger.error({ err: error, topic }, 'topic task failed');
    });
    this.#tails.set(topic, next);
    void next.then(() => {
      if (this.#tails.get(topic) === next) this.#tails.delete(topic);
    });
  }
}
