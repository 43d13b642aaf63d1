/**
 * The worker's connection to the server: one phoenix `Socket` over `ws`, the
 * `worker:queue` channel, and the factory of `run:<id>` channels. It is the
 * lanes' `Claimer`.
 *
 * States (each change logged at debug; others throw):
 *
 *   idle          created, not connected              → connecting | closed
 *   connecting    socket opening or queue joining     → joined | disconnected | closed
 *   joined        worker:queue joined; claims allowed → disconnected | closed
 *   disconnected  socket or channel dropped; phoenix  → connecting | joined | closed
 *                 reconnects and rejoins for ever
 *   closed        close() was called                  (final)
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
import { API_VERSION, CAPABILITY_RUN_CANCEL, RUN_CANCEL, WORK_AVAILABLE, WORKER_QUEUE_TOPIC, runTopic } from '../protocol/events.ts';
import type { ClaimedRun, QueueJoinPayload } from '../protocol/messages.ts';
import { ThrottledWarning } from './throttled-warning.ts';
import { closeDescription, describeRefusal, describeSocketError } from './socket-problems.ts';
import { ClaimInterruptedError, NotConnectedError } from './channel-errors.ts';
import { pushClaim } from './claim-push.ts';
import { jittered } from './jittered.ts';
import { parseFeatures } from './server-features.ts';
import type { ServerFeatures } from './server-features.ts';

export type ConnectionState = 'idle' | 'connecting' | 'joined' | 'disconnected' | 'closed';

const TRANSITIONS: Record<ConnectionState, readonly ConnectionState[]> = {
  idle: ['connecting', 'closed'],
  connecting: ['joined', 'disconnected', 'closed'],
  joined: ['disconnected', 'closed'],
  disconnected: ['connecting', 'joined', 'closed'],
  closed: [],
};

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
  #channel: Channel | null = null;
  #state: ConnectionState = 'idle';
  #features: ServerFeatures = { capabilities: new Set(), heartbeatIntervalMs: null, leaseMs: null };
  readonly #pendingClaims = new Set<(error: Error) => void>();
  #reconnects = 0;
  #everJoined = false;
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
    return this.#state;
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

  get features(): ServerFeatures {
    return this.#features;
  }

  /** Reconnections after the first join. */
  get reconnects(): number {
    return this.#reconnects;
  }

  /** Opens the socket and joins `worker:queue`; returns at once (phoenix keeps trying until it works). */
  connect(): void {
    if (this.#state !== 'idle') return;
    this.#setState('connecting');
    this.#socket.onError((error: unknown) => {
      this.#lastSocketError = describeSocketError(error);
      if (this.#state === 'joined' || this.#state === 'connecting') this.#lost('socket error');
    });
    this.#socket.onClose((event: unknown) => {
      if (this.#state === 'joined' || this.#state === 'connecting') this.#lost('socket closed');
      // Phoenix has scheduled the next attempt by now (its close callbacks run after that).
      if (this.#state !== 'closed') this.#warnUnreachable(event);
    });
    this.#socket.onOpen(() => {
      if (this.#state === 'disconnected') this.#setState('connecting');
    });
    this.#socket.connect();

    const channel = this.#socket.channel(WORKER_QUEUE_TOPIC, this.#options.join);
    this.#channel = channel;
    channel.on(WORK_AVAILABLE, () => {
      if (this.#state === 'joined') this.#options.onWorkAvailable();
    });
    channel.on(RUN_CANCEL, (payload?: unknown) => {
      const runId = typeof payload === 'object' && payload !== null ? (payload as { run_id?: unknown }).run_id : undefined;
      if (!this.#features.capabilities.has(CAPABILITY_RUN_CANCEL)) return;
      if (typeof runId !== 'string' || runId.length === 0 || runId.length > 256) {
        this.#logger.warn({ payload }, 'run:cancel without a run id ignored');
        return;
      }
      this.#options.onRunCancel(runId);
    });
    channel.onError(() => {
      if (this.#state === 'joined' || this.#state === 'connecting') this.#lost('channel error');
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
    const channel = this.#channel;
    if (this.#state !== 'joined' || channel === null) return Promise.reject(new NotConnectedError());
    return pushClaim({
      channel,
      request,
      workerName: this.#options.workerName,
      features: this.#features,
      timeoutMs: this.#options.claimTimeoutMs,
      signal,
      pending: this.#pendingClaims,
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
    if (this.#state === 'closed') return;
    this.#setState('closed');
    this.#interruptClaims('connection closed');
    const channel = this.#channel;
    if (channel !== null) {
      // Leaving also cancels the channel's rejoin timer, which would otherwise keep the process alive
      // when the server was never reached; phoenix answers the leave itself when it cannot push.
      await this.#leave(channel);
      this.#socket.remove(channel);
    }
    await new Promise<void>((resolve) => this.#socket.disconnect(() => resolve(), 1000, 'worker stopping'));
  }

  #joined(response: unknown): void {
    if (this.#state === 'closed') return;
    this.#features = parseFeatures(response);
    if (this.#everJoined) this.#reconnects++;
    this.#everJoined = true;
    this.#warnings.reset();
    this.#lastSocketError = null;
    this.#setState('joined');
    this.#logger.info(
      {
        capabilities: [...this.#features.capabilities],
        heartbeatIntervalMs: this.#features.heartbeatIntervalMs,
        reconnects: this.#reconnects,
      },
      'joined worker:queue',
    );
    this.#options.onJoined(this.#features);
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
    const wasJoined = this.#state === 'joined';
    this.#setState('disconnected');
    this.#interruptClaims(reason);
    if (wasJoined) this.#logger.warn({ reason }, 'disconnected from worker:queue; reconnecting');
    this.#options.onDisconnected();
  }

  #interruptClaims(reason: string): void {
    const pending = [...this.#pendingClaims];
    this.#pendingClaims.clear();
    for (const interrupt of pending) interrupt(new ClaimInterruptedError(reason));
  }

  #setState(next: ConnectionState): void {
    const from = this.#state;
    if (!TRANSITIONS[from].includes(next)) throw new ConnectionStateError(from, next);
    this.#state = next;
    this.#logger.debug({ from, to: next }, 'connection state changed');
  }
}

export class ConnectionStateError extends LanesError {
  constructor(from: ConnectionState, to: ConnectionState) {
    super('INVALID_CONNECTION_TRANSITION', `connection: invalid transition ${from} → ${to}`);
  }
}
