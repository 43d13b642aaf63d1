/**
 * The orchestration server: one HTTP server that serves the JSON API and
 * upgrades `/worker/websocket` to the Phoenix socket, over one store (SQLite or PostgreSQL).
 *
 * States, kept in a `StateMachine` (each change logged at debug; any other
 * move throws `InvalidTransitionError`):
 *
 *   created    opened by `create()`, not listening       → starting | stopping
 *   starting   binding the port, renewing leases,         → listening | stopping
 *              starting the sweeps
 *   listening  serving the API and the worker socket      → stopping
 *   stopping   closing sockets, then HTTP, then the store → stopped
 *   stopped    (final)
 *
 * `create()` opens the store and loads keys (I/O), so a half-built server is
 * never returned; `start()` listens (idempotent: the start in flight travels
 * from `starting` on, with the bound port once there is one); `stop()`
 * returns the stop already in flight on repeated calls (a stop asked while
 * starting waits for the start, then stops).
 */
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { StateMachine } from '../state-machine.ts';
import { LanesChannelRouter } from './channel-router.ts';
import { DashboardFeed } from './dashboard-feed.ts';
import { DashboardRoutes } from './dashboard-routes.ts';
import { buildDashboardSnapshot } from './dashboard-snapshot.ts';
import { HttpApi } from './http-api.ts';
import { LeaseSweeper } from './lease-sweeper.ts';
import { PhoenixSocketServer } from './phoenix-socket-server.ts';
import { CancelNotifier } from './cancel-notifier.ts';
import { RunLifecycle } from './run-lifecycle.ts';
import { RunTokenPool } from './run-token-pool.ts';
import { loadRunKeys } from './run-keys.ts';
import type { RunKeys } from './run-keys.ts';
import { ReplicaEvents } from './replica-events.ts';
import { RetentionSweeper } from './retention-sweeper.ts';
import { openStore } from './store/open-store.ts';
import type { Store } from './store/store.ts';
import { describeDatabaseUrl } from './store/store-url.ts';
import { ServerError } from './server-error.ts';
import { ServerMetrics } from './server-metrics.ts';
import { resolveServerOptions } from './server-options.ts';
import type { ResolvedServerOptions, ServerOptions } from './server-options.ts';
import { WorkNotifier } from './work-notifier.ts';
import { WorkerRegistry } from './worker-registry.ts';

/** `started`: the start in flight or done (null: never started); `stopping`: a stop asked (while starting, null until then). */
type Lifecycle =
  | { readonly kind: 'created' }
  | { readonly kind: 'starting'; readonly started: Promise<void>; port: number | undefined; stopping: Promise<void> | null }
  | { readonly kind: 'listening'; readonly started: Promise<void>; readonly port: number }
  | { readonly kind: 'stopping'; readonly started: Promise<void> | null; readonly port: number | undefined; readonly stopping: Promise<void> }
  | { readonly kind: 'stopped'; readonly started: Promise<void> | null; readonly port: number | undefined; readonly stopping: Promise<void> };

export type LanesServerState = Lifecycle['kind'];

export class LanesServer {
  readonly options: ResolvedServerOptions;
  /** The store, for tests and tools that inspect runs directly. */
  readonly store: Store;
  readonly metrics: ServerMetrics;
  readonly #logger: Logger;
  readonly #keys: RunKeys;
  readonly #registry: WorkerRegistry;
  readonly #notifier: WorkNotifier;
  readonly #tokens: RunTokenPool;
  readonly #lifecycle: RunLifecycle;
  readonly #sweeper: LeaseSweeper;
  readonly #retention: RetentionSweeper | undefined;
  readonly #events: ReplicaEvents;
  readonly #sockets: PhoenixSocketServer;
  readonly #http: Server;
  readonly #feed: DashboardFeed;
  readonly #state: StateMachine<Lifecycle>;

  private constructor(options: ResolvedServerOptions, store: Store, keys: RunKeys) {
    this.options = options;
    this.store = store;
    this.#keys = keys;
    this.#logger = options.logger.child({ component: 'server' });
    this.#state = new StateMachine<Lifecycle>({
      name: 'server',
      initial: { kind: 'created' },
      transitions: { created: ['starting', 'stopping'], starting: ['listening', 'stopping'], listening: ['stopping'], stopping: ['stopped'], stopped: [] },
      logger: this.#logger,
    });
    this.#registry = new WorkerRegistry();
    this.metrics = new ServerMetrics({
      runCounts: async () => (store.isOpen ? store.countsByQueueAndState() : []),
      connectedWorkers: () => this.#registry.size,
      runTokenPool: () => this.#tokens.pooled,
    });
    this.#notifier = new WorkNotifier({ registry: this.#registry, debounceMs: options.workAvailableDebounceMs, logger: this.#logger });
    this.#tokens = new RunTokenPool({
      privateKey: keys.privateKey,
      runTimeoutMs: options.runTimeoutMs,
      graceMs: options.graceMs,
      size: options.presignedTokens,
      maxAgeMs: options.presignedTokenMaxAgeMs,
      logger: this.#logger,
      onSigned: () => this.metrics.runTokensSignedAhead.inc(),
    });
    const cancels = new CancelNotifier({ registry: this.#registry, logger: this.#logger });
    this.#events = new ReplicaEvents({ store, logger: this.#logger });
    this.#lifecycle = new RunLifecycle({ store, notifier: this.#notifier, cancels, events: this.#events, metrics: this.metrics, options, logger: this.#logger });
    this.#sweeper = new LeaseSweeper({ store, lifecycle: this.#lifecycle, metrics: this.metrics, intervalMs: options.sweepIntervalMs, logger: this.#logger });
    this.#retention =
      options.retainMs === null ? undefined : new RetentionSweeper({ store, retainMs: options.retainMs, intervalMs: options.retentionIntervalMs, logger: this.#logger });
    const router = new LanesChannelRouter({
      queue: { store, registry: this.#registry, notifier: this.#notifier, metrics: this.metrics, options, tokens: this.#tokens, logger: this.#logger.child({ channel: 'worker:queue' }) },
      run: { store, lifecycle: this.#lifecycle, registry: this.#registry, options, publicKey: keys.publicKey, logger: this.#logger.child({ channel: 'run' }) },
    });
    this.#sockets = new PhoenixSocketServer({
      secret: options.secret,
      router,
      logger: options.logger.child({ component: 'socket' }),
      maxFrameBytes: options.maxFrameBytes,
      frameCeilingBytes: options.frameCeilingBytes,
      idleTimeoutMs: options.socketIdleTimeoutMs,
    });
    const snapshot = () => buildDashboardSnapshot(store, this.#registry, Date.now());
    this.#feed = new DashboardFeed({
      snapshot: async () => (store.isOpen ? snapshot() : undefined),
      logger: options.logger.child({ component: 'dashboard' }),
    });
    const api = new HttpApi({
      store,
      lifecycle: this.#lifecycle,
      tokens: this.#tokens,
      registry: this.#registry,
      metrics: this.metrics,
      options,
      logger: options.logger.child({ component: 'api' }),
      dashboard: new DashboardRoutes({ feed: this.#feed, snapshot }),
      isReady: () => this.#state.kind === 'listening',
    });
    this.#http = createServer((req, res) => api.handle(req, res));
    this.#http.on('upgrade', (req, socket, head) => this.#sockets.handleUpgrade(req, socket, head));
  }

  /** Validates options, opens the database (applying migrations) and loads or creates the run-token key. */
  static async create(options: ServerOptions): Promise<LanesServer> {
    const resolved = resolveServerOptions(options);
    const store = await openStore(resolved.dbPath, resolved.logger.child({ component: 'store' }));
    try {
      const keys = await loadRunKeys({ dbPath: resolved.dbPath, privateKeyPem: resolved.privateKeyPem, store, logger: resolved.logger });
      return new LanesServer(resolved, store, keys);
    } catch (error) {
      await store.close();
      throw error;
    }
  }

  get state(): LanesServerState {
    return this.#state.kind;
  }

  /** The bound port (still known once stopped); throws before `start()` bound it. */
  get port(): number {
    const current = this.#state.current;
    const port = current.kind === 'created' ? undefined : current.port;
    if (port === undefined) throw new ServerError('SERVER_STATE', 'the server is not listening');
    return port;
  }

  /** `http://HOST:PORT`, the base of the JSON API. */
  get url(): string {
    return `http://${this.#displayHost()}:${this.port}`;
  }

  /** `ws://HOST:PORT/worker`, the endpoint to give workers (`--lightning`). */
  get workerUrl(): string {
    return `ws://${this.#displayHost()}:${this.port}/worker`;
  }

  /** The public half of the run-token key, for `WORKER_LIGHTNING_PUBLIC_KEY`. */
  get publicKeyPem(): string {
    return this.#keys.publicKeyPem;
  }

  #displayHost(): string {
    const host = this.options.host;
    if (host === '0.0.0.0' || host === '::') return '127.0.0.1';
    return host.includes(':') ? `[${host}]` : host;
  }

  /** Listens on the configured port (0: a free one) and starts the lease sweep. */
  start(): Promise<void> {
    const current = this.#state.current;
    if (current.kind !== 'created') {
      return current.started ?? Promise.reject(new ServerError('SERVER_STATE', `cannot start a server that is ${current.kind}`));
    }
    const { promise: started, resolve, reject } = Promise.withResolvers<void>();
    const starting = this.#state.to({ kind: 'starting', started, port: undefined, stopping: null });
    this.#listen(starting).then(resolve, reject);
    return started;
  }

  #listen(starting: Extract<Lifecycle, { kind: 'starting' }>): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const onError = (error: Error): void => {
        reject(new ServerError('SERVER_LISTEN', `cannot listen on ${this.options.host}:${this.options.port}`, { cause: error }));
      };
      this.#http.once('error', onError);
      this.#http.listen(this.options.port, this.options.host, () => {
        this.#http.off('error', onError);
        resolve();
      });
    }).then(async () => {
      starting.port = (this.#http.address() as AddressInfo).port;
      const now = Date.now();
      // Workers could not beat while no server listened: give their runs one lease to reconnect and rejoin.
      const renewed = await this.store.renewHeartbeatLeases(now + this.options.leaseMs);
      if (renewed > 0) this.#logger.info({ runs: renewed, leaseMs: this.options.leaseMs }, 'heartbeat leases renewed after start');
      await this.#sweeper.sweep(now);
      this.#sweeper.start();
      this.#retention?.start();
      await this.#lifecycle.resumePendingRetries(now);
      await this.#lifecycle.listen();
      this.#tokens.start();
      this.#state.to({ kind: 'listening', started: starting.started, port: starting.port });
      this.#logger.info({ port: starting.port, host: this.options.host, url: this.url, workerUrl: this.workerUrl, db: describeDatabaseUrl(this.options.dbPath) }, 'listening');
    });
  }

  /** Closes worker sockets, the HTTP server, then the database. Safe to call in any state, any number of times. */
  stop(): Promise<void> {
    const current = this.#state.current;
    if (current.kind === 'stopping' || current.kind === 'stopped') return current.stopping;
    if (current.kind === 'starting' && current.stopping !== null) return current.stopping;
    const { promise: stopping, resolve, reject } = Promise.withResolvers<void>();
    if (current.kind === 'starting') {
      current.stopping = stopping;
      current.started.catch(() => undefined).then(() => this.#stop(stopping)).then(resolve, reject);
    } else {
      this.#stop(stopping).then(resolve, reject);
    }
    return stopping;
  }

  async #stop(stopping: Promise<void>): Promise<void> {
    const current = this.#state.current;
    // A start that failed half-way stays `starting`: it is stopped like a listening server.
    if (current.kind !== 'created' && current.kind !== 'starting' && current.kind !== 'listening') return;
    const started = current.kind === 'created' ? null : current.started;
    const port = current.kind === 'created' ? undefined : current.port;
    this.#state.to({ kind: 'stopping', started, port, stopping });
    this.#sweeper.stop();
    this.#retention?.stop();
    this.#notifier.stop();
    this.#tokens.stop();
    this.#lifecycle.stop();
    this.#feed.stop();
    await this.#events.stop();
    await this.#sockets.close();
    if (started !== null && this.#http.listening) {
      const closed = new Promise<void>((resolve) => this.#http.close(() => resolve()));
      this.#http.closeIdleConnections();
      // Requests still open (a `?wait` that was answered 503 above is already done) are cut.
      this.#http.closeAllConnections();
      await closed;
    }
    await this.store.close();
    this.#state.to({ kind: 'stopped', started, port, stopping });
    this.#logger.info('stopped');
  }
}
