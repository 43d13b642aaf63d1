/**
 * The worker's connection to the server: one phoenix `Socket` over `ws`, the
 * `worker:queue` channel, and the factory of `run:<id>` channels. It is the
 * lanes' `Claimer`.
 *
 * States, kept in a `StateMachine` (each change logged at debug; any other
 * move throws `InvalidTransitionError`):
 *
 *   idle          created, not connected              → connecting | closed
 *   connecting    socket opening or queue joining     → joined | disconnected | closed
 *   joined        worker:queue joined; claims allowed → disconnected | closed
 *   disconnected  socket or channel dropped; phoenix  → connecting | joined | closed
 *                 reconnects and rejoins for ever
 *   closed        close() was called                  (final)
 *
 * The `worker:queue` channel travels from `connecting` on, with what the
 * last join offered (`features`, kept while phoenix reconnects); the claims
 * in flight belong to `joined`, the only state that sends them.
 *
 * Claims in flight when the channel drops are rejected at once (their reply
 * can no longer arrive), so a lane never waits out a claim timeout for a dead
 * connection. The server's lease brings back any run it gave in a lost reply.
 *
 * Failover (`server-rotation.ts`): each reconnect goes to the next server
 * URL, where phoenix rejoins `worker:queue` and every run channel with its
 * token. What it says while it cannot get through: `connection-warnings.ts`.
 */
import { setMaxListeners } from 'node:events';
import { Socket } from 'phoenix';
import type { Channel } from 'phoenix';
import type { Logger } from 'pino';
import { WebSocket } from 'ws';
import type { ClaimRequest, Claimer } from '../lanes/claimer.ts';
import { StateMachine } from '../state-machine.ts';
import { API_VERSION, CAPABILITY_HELD_CLAIMS, CAPABILITY_MEMORY_CLAIMS, CAPABILITY_RUN_CANCEL, CLAIM_RELEASE, RUN_CANCEL, WORK_AVAILABLE, WORKER_QUEUE_TOPIC, runTopic } from '../protocol/events.ts';
import { runCancelPayloadShape } from '../protocol/claim-schema.ts';
import type { ClaimedRun, QueueJoinPayload } from '../protocol/messages.ts';
import { ConnectionWarnings } from './connection-warnings.ts';
import { describeRefusal } from './socket-problems.ts';
import { NotConnectedError } from './channel-errors.ts';
import { CLAIM_HOLD_MS, forget, interruptClaims, pushClaim } from './claim-push.ts';
import { ServerRotation } from './server-rotation.ts';
import { jittered } from './jittered.ts';
import { parseFeatures, workQueuesOf } from './server-features.ts';
import type { ServerFeatures } from './server-features.ts';

/** `claims`: the interrupts of the claims (and the `claim:release`) in flight, called when the channel drops. */
type Link =
  | { readonly kind: 'idle' }
  | { readonly kind: 'connecting'; readonly channel: Channel; readonly features: ServerFeatures }
  | { readonly kind: 'joined'; readonly channel: Channel; readonly features: ServerFeatures; readonly claims: Set<(error: Error) => void> }
  | { readonly kind: 'disconnected'; readonly channel: Channel; readonly features: ServerFeatures }
  | { readonly kind: 'closed' };

export type ConnectionState = Link['kind'];

/** What a server that has not answered a join offers: nothing. */
const NO_FEATURES: ServerFeatures = { capabilities: new Set(), heartbeatIntervalMs: null, leaseMs: null };

export interface QueueConnectionOptions {
  /** `ws://HOST:PORT/worker` of each server, tried in turn; phoenix appends `/websocket`. */
  urls: readonly string[];
  workerToken: string;
  workerVersion: string;
  workerName: string | null;
  join: QueueJoinPayload;
  claimTimeoutMs: number;
  /** Join and leave timeouts. */
  messageTimeoutMs: number;
  /** Reconnect backoff: doubles from min to max, with jitter. */
  reconnect: Readonly<{ minMs: number; maxMs: number }>;
  logger: Logger;
  onJoined: (features: ServerFeatures) => void;
  onDisconnected: () => void;
  /**
   * The server says work was queued: in `queues` when it named them
   * (`work_queues`), or null when every lane should look (`{}`, Lightning,
   * a payload that does not fit the schema: waking too many loses nothing).
   */
  onWorkAvailable: (queues: readonly string[] | null) => void;
  /** The server cancelled a run it handed to this worker (`run_cancel`, only when it offered the extension). */
  onRunCancel: (runId: string) => void;
  /** The server refused the join for a reason retrying cannot fix (it rejects the lanes): the worker gives up. */
  onRefused: (reason: string) => void;
  /** Interval of the repeated connection warnings; default 30 s. */
  warnEveryMs?: number;
}

/** A join refusal no retry can fix: the server rejects what the worker declared (its lanes, its capacity). */
const PERMANENT_JOIN_REFUSALS: ReadonlySet<string> = new Set(['invalid_payload']);

export class QueueConnection implements Claimer {
  readonly #options: QueueConnectionOptions;
  readonly #logger: Logger;
  readonly #socket: Socket;
  readonly #state: StateMachine<Link>;
  /** Joins of `worker:queue`, the first included. */
  #joins = 0;
  readonly #warnings: ConnectionWarnings;
  readonly #servers: ServerRotation;
  readonly #closed = new AbortController();

  constructor(options: QueueConnectionOptions) {
    this.#options = options;
    this.#logger = options.logger;
    setMaxListeners(0, this.#closed.signal);
    this.#state = new StateMachine<Link>({
      name: 'connection',
      initial: { kind: 'idle' },
      transitions: {
        idle: ['connecting', 'closed'],
        connecting: ['joined', 'disconnected', 'closed'],
        joined: ['disconnected', 'closed'],
        disconnected: ['connecting', 'joined', 'closed'],
        closed: [],
      },
      logger: options.logger,
    });
    this.#warnings = new ConnectionWarnings(options.logger, options.warnEveryMs);
    const { minMs, maxMs } = options.reconnect;
    this.#servers = new ServerRotation(options.urls);
    this.#socket = new Socket(this.#servers.current, {
      transport: WebSocket,
      params: { token: options.workerToken, api_version: API_VERSION, worker_version: options.workerVersion },
      // Capped exponential backoff with jitter, for ever: a worker outlives server restarts.
      reconnectAfterMs: (tries: number) => {
        this.#nextServer();
        return this.#warnings.reconnectIn(jittered(minMs, maxMs, tries));
      },
      rejoinAfterMs: (tries: number) => this.#warnings.rejoinIn(jittered(minMs, maxMs, tries)),
      logger: (kind: string, message: string) => this.#logger.trace({ kind }, message),
    });
  }

  get state(): ConnectionState {
    return this.#state.kind;
  }

  /** The server URL the socket connects (or reconnects) to. */
  get url(): string {
    return this.#servers.current;
  }

  /** Points the next reconnect at the next server URL, when there are several. */
  #nextServer(): void {
    const next = this.#servers.advance();
    if (next === null) return;
    // phoenix reads `endPoint` on every (re)connect; its type does not declare it.
    (this.#socket as unknown as { endPoint: string }).endPoint = `${next}/websocket`;
    this.#logger.info({ server: next }, 'reconnecting to the next server');
  }

  /** What the last join of `worker:queue` offered (nothing before the first one). */
  get features(): ServerFeatures {
    const current = this.#state.current;
    return current.kind === 'idle' || current.kind === 'closed' ? NO_FEATURES : current.features;
  }

  /** Reconnections after the first join. */
  get reconnects(): number {
    return Math.max(0, this.#joins - 1);
  }

  /** Whether the socket was connecting or joined: a drop then is a loss to report. */
  get #live(): boolean {
    const kind = this.#state.kind;
    return kind === 'joined' || kind === 'connecting';
  }

  /** Opens the socket and joins `worker:queue`; returns at once (phoenix keeps trying until it works). */
  connect(): void {
    if (this.#state.kind !== 'idle') return;
    const channel = this.#socket.channel(WORKER_QUEUE_TOPIC, this.#options.join);
    this.#state.to({ kind: 'connecting', channel, features: NO_FEATURES });
    this.#socket.onError((error: unknown) => {
      this.#warnings.socketError(error);
      if (this.#live) this.#lost('socket error');
    });
    this.#socket.onClose((event: unknown) => {
      if (this.#live) this.#lost('socket closed');
      // Phoenix has scheduled the next attempt by now (its close callbacks run after that).
      if (this.#state.kind !== 'closed') this.#warnings.unreachable(event, this.#servers.closed, this.url);
    });
    this.#socket.onOpen(() => {
      const disconnected = this.#state.when('disconnected');
      if (disconnected) this.#state.to({ kind: 'connecting', channel: disconnected.channel, features: disconnected.features });
    });
    this.#socket.connect();

    channel.on(WORK_AVAILABLE, (payload?: unknown) => {
      if (this.#state.kind === 'joined') this.#options.onWorkAvailable(workQueuesOf(this.features, payload));
    });
    channel.on(RUN_CANCEL, (payload?: unknown) => {
      const runId = runCancelPayloadShape.check(payload) ? payload.run_id : undefined;
      if (!this.features.capabilities.has(CAPABILITY_RUN_CANCEL)) return;
      if (typeof runId !== 'string' || runId.length === 0 || runId.length > 256) {
        this.#logger.warn({ payload }, 'run:cancel without a run id ignored');
        return;
      }
      this.#options.onRunCancel(runId);
    });
    channel.onError(() => {
      if (this.#live) this.#lost('channel error');
    });
    // The join push's hooks fire again on every rejoin phoenix makes after a reconnect.
    channel
      .join(this.#options.messageTimeoutMs)
      .receive('ok', (response?: unknown) => this.#joined(response))
      .receive('error', (response?: unknown) => {
        const reason = describeRefusal(response);
        const code = typeof response === 'object' && response !== null ? (response as { reason?: unknown }).reason : undefined;
        if (typeof code === 'string' && PERMANENT_JOIN_REFUSALS.has(code)) {
          this.#logger.error({ reason }, 'the server refused the lanes; retrying cannot fix it');
          this.#options.onRefused(reason);
          return;
        }
        this.#warnings.joinRefused(reason);
      })
      .receive('timeout', () => this.#warnings.joinTimedOut(this.#options.messageTimeoutMs));
  }

  /** Claims for one lane. Rejects at once when not joined, and when the connection drops before the reply. */
  claim(request: ClaimRequest, signal: AbortSignal): Promise<readonly ClaimedRun[]> {
    const joined = this.#state.when('joined');
    if (joined === undefined) return Promise.reject(new NotConnectedError());
    return pushClaim({
      channel: joined.channel,
      request,
      holdMs: this.holdMs(request),
      workerName: this.#options.workerName,
      features: joined.features,
      timeoutMs: this.#options.claimTimeoutMs,
      signal,
      pending: joined.claims,
      logger: this.#logger,
    });
  }

  /**
   * The `hold_ms` a claim sent now carries: with `held_claims` offered, else
   * 0; and 0 for a claim that says what memory fits (a lane bounded by
   * memory): held, it would keep the free memory of when it was sent while
   * the lane's runs end and free more, and a run that needs that memory would
   * wait for the hold to end.
   */
  holdMs(request: ClaimRequest): number {
    const joined = this.#state.when('joined');
    if (joined === undefined || !joined.features.capabilities.has(CAPABILITY_HELD_CLAIMS)) return 0;
    if (request.memory !== undefined && joined.features.capabilities.has(CAPABILITY_MEMORY_CLAIMS)) return 0;
    return Math.min(CLAIM_HOLD_MS, Math.floor(this.#options.claimTimeoutMs / 2));
  }

  /**
   * `claim:release` (`held_claims`): the server answers the claims it holds
   * for this connection at once, empty. Sent by a stopping worker after its
   * lanes stopped claiming, so their last claims end now, not when held out.
   */
  releaseClaims(): Promise<void> {
    const joined = this.#state.when('joined');
    if (joined === undefined || !joined.features.capabilities.has(CAPABILITY_HELD_CLAIMS)) return Promise.resolve();
    // Resolves however the server answers, or when the connection ends (with the claims in flight,
    // whose interrupts drop the push's timer), so that nothing of it outlives the stop.
    return new Promise<void>((resolve) => {
      const done = (): void => {
        joined.claims.delete(interrupt);
        resolve();
      };
      const interrupt = (): void => {
        forget(push);
        done();
      };
      joined.claims.add(interrupt);
      const push = joined.channel.push(CLAIM_RELEASE, {}, this.#options.messageTimeoutMs);
      push.receive('ok', done).receive('error', done).receive('timeout', done);
    });
  }

  /** Aborted by `close()`: run channels never rejoin after it (each run in flight listens, channel-drops.ts, hence no listener cap). */
  get closed(): AbortSignal {
    return this.#closed.signal;
  }

  /** A channel for one run, joined with its run token (phoenix rejoins it after a reconnect). */
  runChannel(runId: string, token: string): Channel {
    return this.#socket.channel(runTopic(runId), { token });
  }

  /** Leaves a run channel and forgets it. */
  async leaveRunChannel(channel: Channel): Promise<void> {
    if (this.#socket.isConnected()) await this.#leave(channel);
    this.#socket.remove(channel);
  }

  /** Leaves a channel; resolves however the server answers (or does not). */
  #leave(channel: Channel): Promise<void> {
    return new Promise<void>((resolve) => {
      channel
        .leave(this.#options.messageTimeoutMs)
        .receive('ok', () => resolve())
        .receive('error', () => resolve())
        .receive('timeout', () => resolve());
    });
  }

  /** Leaves `worker:queue` and closes the socket; no reconnect after this. */
  async close(): Promise<void> {
    const current = this.#state.current;
    if (current.kind === 'closed') return;
    this.#state.to({ kind: 'closed' });
    this.#closed.abort();
    if (current.kind === 'joined') interruptClaims(current.claims, 'connection closed');
    if (current.kind !== 'idle') {
      const channel = current.channel;
      // Leaving also cancels the channel's rejoin timer, which would otherwise keep the process alive
      // when the server was never reached; phoenix answers the leave itself when it cannot push.
      await this.#leave(channel);
      this.#socket.remove(channel);
    }
    await new Promise<void>((resolve) => this.#socket.disconnect(() => resolve(), 1000, 'worker stopping'));
  }

  #joined(response: unknown): void {
    const current = this.#state.current;
    if (current.kind === 'closed' || current.kind === 'idle') return;
    const features = parseFeatures(response);
    this.#joins++;
    this.#warnings.joined();
    this.#state.to({ kind: 'joined', channel: current.channel, features, claims: new Set() });
    this.#logger.info(
      {
        capabilities: [...features.capabilities],
        heartbeatIntervalMs: features.heartbeatIntervalMs,
        reconnects: this.reconnects,
      },
      'joined worker:queue',
    );
    this.#options.onJoined(features);
  }

  #lost(reason: string): void {
    const current = this.#state.current;
    if (current.kind !== 'joined' && current.kind !== 'connecting') return;
    this.#state.to({ kind: 'disconnected', channel: current.channel, features: current.features });
    if (current.kind === 'joined') {
      interruptClaims(current.claims, reason);
      this.#logger.warn({ reason }, 'disconnected from worker:queue; reconnecting');
    }
    this.#options.onDisconnected();
  }
}
