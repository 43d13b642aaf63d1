/**
 * The orchestration server: one HTTP server that serves the JSON API and
 * upgrades `/worker/websocket` to the Phoenix socket, over one store (SQLite or PostgreSQL).
 *
 * States: created → starting → listening → stopping → stopped.
 * `create()` opens the store and loads keys (I/O), so a half-built server is
 * never returned; `start()` listens (idempotent: returns the promise in
 * flight); `stop()` closes sockets, then HTTP, then the database last, and
 * returns the promise already in flight on repeated calls.
 */
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { LanesChannelRouter } from './channel-router.ts';
import { DashboardFeed } from './dashboard-feed.ts';
import { DashboardRoutes } from './dashboard-routes.ts';
import { buildDashboardSnapshot } from './dashboard-snapshot.ts';
import { HttpApi } from './http-api.ts';
import { LeaseSweeper } from './lease-sweeper.ts';
import { PhoenixSocketServer } from './phoenix-socket-server.ts';
import { CancelNotifier } from './cancel-notifier.ts';
import { RunLifecycle } from './run-lifecycle.ts';
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

export type LanesServerState = 'created' | 'starting' | 'listening' | 'stopping' | 'stopped';

const TRANSITIONS: Record<LanesServerState, readonly LanesServerState[]> = {
  created: ['starting', 'stopping'],
  starting: ['listening', 'stopping'],
  listening: ['stopping'],
  stopping: ['stopped'],
  stopped: [],
};

export class LanesServer {
  readonly options: ResolvedServerOptions;
  /** The store, for tests and tools that inspect runs directly. */
  readonly store: Store;
  readonly metrics: ServerMetrics;
  readonly #logger: Logger;
  readonly #keys: RunKeys;
  readonly #registry: WorkerRegistry;
  readonly #notifier: WorkNotifier;
  readonly #lifecycle: RunLifecycle;
  readonly #sweeper: LeaseSweeper;
  readonly #retention: RetentionSweeper | undefined;
  readonly #events: ReplicaEvents;
  readonly #sockets: PhoenixSocketServer;
  readonly #http: Server;
  readonly #feed: DashboardFeed;
  #state: LanesServerState = 'created';
  #port: number | undefined;
  #starting: Promise<void> | undefined;
  #stopping: Promise<void> | undefined;

  private constructor(options: ResolvedServerOptions, store: Store, keys: RunKeys) {
    this.options = options;
    this.store = store;
    this.#keys = keys;
    this.#logger = options.logger.child({ component: 'server' });
    this.#registry = new WorkerRegistry();
    this.metrics = new ServerMetrics({
      runCounts: async () => (store.isOpen ? store.countsByQueueAndState() : []),
      connectedWorkers: () => this.#registry.size,
    });
    this.#notifier = new WorkNotifier({ registry: this.#registry, debounceMs: options.workAvailableDebounceMs, logger: this.#logger });
    const cancels = new CancelNotifier({ registry: this.#registry, logger: this.#logger });
    this.#events = new ReplicaEvents({ store, logger: this.#logger });
    this.#lifecycle = new RunLifecycle({ store, notifier: this.#notifier, cancels, events: this.#events, metrics: this.metrics, options, logger: this.#logger });
    this.#sweeper = new LeaseSweeper({ store, lifecycle: this.#lifecycle, metrics: this.metrics, intervalMs: options.sweepIntervalMs, logger: this.#logger });
    this.#retention =
      options.retainMs === null ? undefined : new RetentionSweeper({ store, retainMs: options.retainMs, intervalMs: options.retentionIntervalMs, logger: this.#logger });
    const router = new LanesChannelRouter({
      queue: { store, registry: this.#registry, notifier: this.#notifier, metrics: this.metrics, options, privateKey: keys.privateKey, logger: this.#logger.child({ channel: 'worker:queue' }) },
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
      registry: this.#registry,
      metrics: this.metrics,
      options,
      logger: options.logger.child({ component: 'api' }),
      dashboard: new DashboardRoutes({ feed: this.#feed, snapshot }),
      isReady: () => this.#state === 'listening',
    });
    this.#http = createServer((req, res) => api.handle(req, res));
    this.#http.on('upgrade', (req, socket, head) => this.#sockets.handleUpgrade(req, socket, head));
  }

  /** Validates options, opens the database (applying migrations) and loads or creates the run-token key. */
  static async create(options: ServerOptions): Promise<LanesServer> {
    const resolved = resolveServerOptions(options);
    const store = await openStore(resolved.dbPath);
    try {
      const keys = await loadRunKeys({ dbPath: resolved.dbPath, privateKeyPem: resolved.privateKeyPem, store, logger: resolved.logger });
      return new LanesServer(resolved, store, keys);
    } catch (error) {
      await store.close();
      throw error;
    }
  }

  get state(): LanesServerState {
    return this.#state;
  }

  /** The bound port; throws before `start()` resolved. */
  get port(): number {
    if (this.#port === undefined) throw new ServerError('SERVER_STATE', 'the server is not listening');
    return this.#port;
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

  #setState(next: LanesServerState): void {
    if (!TRANSITIONS[this.#state].includes(next)) {
      throw new ServerError('SERVER_STATE', `invalid server transition ${this.#state} → ${next}`);
    }
    this.#logger.debug({ from: this.#state, to: next }, 'server state');
    this.#state = next;
  }

  /** Listens on the configured port (0: a free one) and starts the lease sweep. */
  start(): Promise<void> {
    if (this.#starting) return this.#starting;
    if (this.#state !== 'created') return Promise.reject(new ServerError('SERVER_STATE', `cannot start a server that is ${this.#state}`));
    this.#setState('starting');
    this.#starting = new Promise<void>((resolve, reject) => {
      const onError = (error: Error): void => {
        reject(new ServerError('SERVER_LISTEN', `cannot listen on ${this.options.host}:${this.options.port}`, { cause: error }));
      };
      this.#http.once('error', onError);
      this.#http.listen(this.options.port, this.options.host, () => {
        this.#http.off('error', onError);
        resolve();
      });
    }).then(async () => {
      if (this.#state !== 'starting') return;
      this.#port = (this.#http.address() as AddressInfo).port;
      const now = Date.now();
      // Workers could not beat while no server listened: give their runs one lease to reconnect and rejoin.
      const renewed = await this.store.renewHeartbeatLeases(now + this.options.leaseMs);
      if (renewed > 0) this.#logger.info({ runs: renewed, leaseMs: this.options.leaseMs }, 'heartbeat leases renewed after start');
      await this.#sweeper.sweep(now);
      this.#sweeper.start();
      this.#retention?.start();
      await this.#lifecycle.resumePendingRetries(now);
      await this.#lifecycle.listen();
      if (this.#state !== 'starting') return;
      this.#setState('listening');
      this.#logger.info({ port: this.#port, host: this.options.host, url: this.url, workerUrl: this.workerUrl, db: describeDatabaseUrl(this.options.dbPath) }, 'listening');
    });
    return this.#starting;
  }

  /** Closes worker sockets, the HTTP server, then the database. Safe to call in any state, any number of times. */
  stop(): Promise<void> {
    if (this.#stopping) return this.#stopping;
    this.#stopping = this.#stop();
    return this.#stopping;
  }

  async #stop(): Promise<void> {
    const wasListening = this.#starting !== undefined;
    if (this.#starting) await this.#starting.catch(() => undefined);
    this.#setState('stopping');
    this.#sweeper.stop();
    this.#retention?.stop();
    this.#notifier.stop();
    this.#lifecycle.stop();
    this.#feed.stop();
    await this.#events.stop();
    await this.#sockets.close();
    if (wasListening && this.#http.listening) {
      const closed = new Promise<void>((resolve) => this.#http.close(() => resolve()));
      this.#http.closeIdleConnections();
      // Requests still open (a `?wait` that was answered 503 above is already done) are cut.
      this.#http.closeAllConnections();
      await closed;
    }
    await this.store.close();
    this.#setState('stopped');
    this.#logger.info('stopped');
  }
}
