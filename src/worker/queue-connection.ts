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
 * Failover: with several server URLs (replicas of one queue), each reconnect
 * attempt goes to the next URL in turn, so a worker whose server is gone
 * lands on another; phoenix then rejoins `worker:queue` and every run
 * channel with its token there.
 */
import { Socket } from 'phoenix';
import type { Channel } from 'phoenix';
import type { Logger } from 'pino';
import { WebSocket } from 'ws';
import { LanesError } from '../errors/lanes-error.ts';
import type { ClaimRequest, Claimer } from '../lanes/claimer.ts';
import { StateMachine } from '../state-machine.ts';
import { API_VERSION, CAPABILITY_RUN_CANCEL, RUN_CANCEL, WORK_AVAILABLE, WORKER_QUEUE_TOPIC, runTopic } from '../protocol/events.ts';
import { runCancelPayloadShape } from '../protocol/claim-schema.ts';
import type { ClaimedRun, QueueJoinPayload } from '../protocol/messages.ts';
import { ThrottledWarning } from './throttled-warning.ts';
import { closeDescription, describeRefusal, describeSocketError } from './socket-problems.ts';
import { ClaimInterruptedError, NotConnectedError } from './channel-errors.ts';
import { pushClaim } from './claim-push.ts';
import { jittered } from './jittered.ts';
import { parseFeatures } from './server-features.ts';
import type { ServerFeatures } from './server-features.ts';

/** `claims`: the interrupts of the claims in flight, called when the channel drops. */
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
  onWorkAvailable: () => void;
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
  /** Why the last connection attempt failed, until the next close reports it. */
  #lastSocketError: string | null = null;
  /** The delays phoenix last chose, for the warnings ("retrying in …"). */
  #nextReconnectMs = 0;
  #nextRejoinMs = 0;
  readonly #warnings: ThrottledWarning;
  #urlIndex = 0;
  /** The URL of the connection that just closed: phoenix picks the next delay (and so the next server) before it reports the close. */
  #closedUrl: string | null = null;

  constructor(options: QueueConnectionOptions) {
    this.#options = options;
    this.#logger = options.logger;
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
    this.#warnings = new ThrottledWarning(options.logger, options.warnEveryMs === undefined ? {} : { everyMs: options.warnEveryMs });
    const { minMs, maxMs } = options.reconnect;
    if (options.urls.length === 0) throw new LanesError('NO_SERVER_URL', 'no server URL to connect to');
    this.#socket = new Socket(options.urls[0] ?? '', {
      transport: WebSocket,
      params: { token: options.workerToken, api_version: API_VERSION, worker_version: options.workerVersion },
      // Capped exponential backoff with jitter, for ever: a worker outlives server restarts.
      reconnectAfterMs: (tries: number) => {
        this.#nextServer();
        return (this.#nextReconnectMs = jittered(minMs, maxMs, tries));
      },
      rejoinAfterMs: (tries: number) => (this.#nextRejoinMs = jittered(minMs, maxMs, tries)),
      logger: (kind: string, message: string) => this.#logger.trace({ kind }, message),
    });
  }

  get state(): ConnectionState {
    return this.#state.kind;
  }

  /** The server URL the socket connects (or reconnects) to. */
  get url(): string {
    return this.#options.urls[this.#urlIndex] ?? '';
  }

  /** Points the next reconnect at the next server URL, when there are several. */
  #nextServer(): void {
    const { urls } = this.#options;
    this.#closedUrl = this.url;
    if (urls.length < 2) return;
    this.#urlIndex = (this.#urlIndex + 1) % urls.length;
    // phoenix reads `endPoint` on every (re)connect; its type does not declare it.
    (this.#socket as unknown as { endPoint: string }).endPoint = `${this.url}/websocket`;
    this.#logger.info({ server: this.url }, 'reconnecting to the next server');
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
      this.#lastSocketError = describeSocketError(error);
      if (this.#live) this.#lost('socket error');
    });
    this.#socket.onClose((event: unknown) => {
      if (this.#live) this.#lost('socket closed');
      // Phoenix has scheduled the next attempt by now (its close callbacks run after that).
      if (this.#state.kind !== 'closed') this.#warnUnreachable(event);
    });
    this.#socket.onOpen(() => {
      const disconnected = this.#state.when('disconnected');
      if (disconnected) this.#state.to({ kind: 'connecting', channel: disconnected.channel, features: disconnected.features });
    });
    this.#socket.connect();

    channel.on(WORK_AVAILABLE, () => {
      if (this.#state.kind === 'joined') this.#options.onWorkAvailable();
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
        this.#warnings.warn({ reason, retryInMs: this.#nextRejoinMs }, 'worker:queue join refused; retrying');
      })
      .receive('timeout', () => {
        this.#warnings.warn({ timeoutMs: this.#options.messageTimeoutMs, retryInMs: this.#nextRejoinMs }, 'worker:queue join timed out; retrying');
      });
  }

  /** Claims for one lane. Rejects at once when not joined, and when the connection drops before the reply. */
  claim(request: ClaimRequest, signal: AbortSignal): Promise<readonly ClaimedRun[]> {
    const joined = this.#state.when('joined');
    if (joined === undefined) return Promise.reject(new NotConnectedError());
    return pushClaim({
      channel: joined.channel,
      request,
      workerName: this.#options.workerName,
      features: joined.features,
      timeoutMs: this.#options.claimTimeoutMs,
      signal,
      pending: joined.claims,
      logger: this.#logger,
    });
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
    this.#warnings.reset();
    this.#lastSocketError = null;
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

  /** Why the socket could not connect, or closed before joining, at warn, throttled. */
  #warnUnreachable(event: unknown): void {
    const cause = this.#lastSocketError ?? closeDescription(event);
    this.#lastSocketError = null;
    const fields = { server: this.#closedUrl ?? this.url, cause, retryInMs: this.#nextReconnectMs, nextServer: this.url };
    // `ws` reports a refused upgrade as "Unexpected server response: 401"; the Lanes server and Lightning answer a bad token so.
    if (/\b(401|403)\b/.test(cause)) this.#warnings.warn(fields, 'the server refused the worker token: check WORKER_SECRET');
    else if (/\b404\b/.test(cause)) this.#warnings.warn(fields, 'no worker endpoint at this URL: check WORKER_LIGHTNING_SERVICE_URL (it ends in /worker)');
    else this.#warnings.warn(fields, 'cannot reach the server; retrying');
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

/** Rejects the claims in flight: their replies can no longer arrive. */
function interruptClaims(claims: Set<(error: Error) => void>, reason: string): void {
  const pending = [...claims];
  claims.clear();
  for (const interrupt of pending) interrupt(new ClaimInterruptedError(reason));
}
