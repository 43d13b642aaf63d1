/**
 * The worker (DESIGN.md): a connection to the server, one Workloop per lane,
 * the runs they start, an executor shared by the lanes, and the health and
 * metrics HTTP server. This file is the worker's lifecycle; its parts are
 * built and wired to each other in `worker-parts.ts`.
 *
 * States, kept in a `StateMachine` (each change logged at debug; any other
 * move throws `InvalidTransitionError`):
 *
 *   created   built by `create()`, nothing running      → starting | stopped
 *   starting  health server binding, socket opening     → running | stopped
 *   running   lanes claim once worker:queue is joined    → draining
 *   draining  stop(): no new claims, claims in flight    → stopped
 *             awaited, runs finish up to the shutdown
 *             timeout, then are killed (ShutdownError)
 *   stopped   channels left, socket closed, port freed
 *
 * The promise of the start in flight travels from `starting` on (a second
 * `start()` returns it), the promise of the stop in flight from the state it
 * was asked in (a second `stop()` returns it): a stop asked while starting
 * drains once the start is done.
 *
 * `stop({force: true})` (or a second stop with force while draining) kills
 * the runs and closes at once. A claimed run is always started: a graceful
 * stop waits for claims in flight, and their runs are drained like the rest.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { WorkerConfig } from '../config/worker-config.ts';
import type { RunExecutor } from '../engine/types.ts';
import { LanesError } from '../errors/lanes-error.ts';
import type { Workloop } from '../lanes/workloop.ts';
import { importRunPublicKey, signWorkerToken } from '../protocol/tokens.ts';
import type { SigningKey } from '../protocol/tokens.ts';
import { StateMachine } from '../state-machine.ts';
import { createWorkerEngine } from './create-engine.ts';
import type { EngineOverrides } from './create-engine.ts';
import type { HealthServer } from './health-server.ts';
import { laneSnapshot } from './lane-snapshot.ts';
import type { LaneSnapshot } from './lane-snapshot.ts';
import type { Readiness } from './health-server.ts';
import type { QueueConnection } from './queue-connection.ts';
import type { ConnectionState } from './queue-connection.ts';
import { drainWorker } from './worker-drain.ts';
import { describeMemory } from './worker-memory.ts';
import type { WorkerMetrics } from './worker-metrics.ts';
import { buildWorkerParts } from './worker-parts.ts';
import type { WorkerRuns } from './worker-runs.ts';

/** `started`: the start in flight or done; `stopping`: the stop in flight or done (null: none was asked). */
type Lifecycle =
  | { readonly kind: 'created' }
  | { readonly kind: 'starting'; readonly started: Promise<void>; stopping: Promise<void> | null }
  | { readonly kind: 'running'; readonly started: Promise<void> }
  | { readonly kind: 'draining'; readonly started: Promise<void> | null; readonly stopping: Promise<void> }
  | { readonly kind: 'stopped'; readonly started: Promise<void> | null; readonly stopping: Promise<void> | null };

export type WorkerState = Lifecycle['kind'];

export { WORKER_VERSION } from './worker-parts.ts';

/** The engine as the worker owns it: an executor it must stop. */
export interface OwnedExecutor {
  executor: RunExecutor;
  stop: () => Promise<void>;
}

export interface WorkerCreateOptions {
  config: WorkerConfig;
  logger: Logger;
  /** The engine; when absent the worker creates the real one and stops it on `stop()`. */
  executor?: RunExecutor;
  workerId?: string;
  /** Reconnect backoff of the socket; defaults to 250 ms doubling up to 10 s. */
  reconnect?: Readonly<{ minMs: number; maxMs: number }>;
  /** Interface of the health server; defaults to all interfaces. */
  healthHost?: string;
  /** Options for the engine the worker creates when no executor is given (the CLI's env, tests' local adaptors). */
  engine?: EngineOverrides;
}

export class Worker {
  readonly workerId: string;
  readonly #config: WorkerConfig;
  readonly #logger: Logger;
  readonly #executor: RunExecutor;
  readonly #stopExecutor: (() => Promise<void>) | null;
  readonly #connection: QueueConnection;
  readonly #lanes: Workloop[];
  readonly #wakeOrder: readonly Workloop[];
  readonly #metrics: WorkerMetrics;
  readonly #health: HealthServer;
  readonly #runs: WorkerRuns;
  readonly #force = new AbortController();
  #markRefused: (error: LanesError) => void = () => undefined;
  /** Settles when the server refuses this worker for good (its lanes); the worker is then stopping. */
  readonly refused: Promise<LanesError> = new Promise((resolve) => (this.#markRefused = resolve));
  readonly #state: StateMachine<Lifecycle>;

  /** Creates a worker; no socket is opened and no port bound until `start()`. */
  static async create(options: WorkerCreateOptions): Promise<Worker> {
    const workerId = options.workerId ?? randomUUID();
    // Each component binds its own `component` on the worker's base (binding it twice would repeat the key in every line).
    const base = options.logger.child({ workerId });
    const logger = base.child({ component: 'worker' });
    const workerToken = await signWorkerToken(options.config.secret, workerId);
    const runPublicKey = options.config.lightningPublicKey === null ? null : await importRunPublicKey(options.config.lightningPublicKey);
    let owned: OwnedExecutor;
    if (options.executor !== undefined) {
      owned = { executor: options.executor, stop: async () => {} };
    } else {
      owned = await createWorkerEngine(options.config, base, options.engine);
    }
    return new Worker({ ...options, workerId, logger, base, workerToken, runPublicKey, owned: options.executor === undefined ? owned : null, executor: owned.executor });
  }

  private constructor(init: WorkerCreateOptions & { workerId: string; base: Logger; workerToken: string; runPublicKey: SigningKey | null; owned: OwnedExecutor | null; executor: RunExecutor }) {
    this.workerId = init.workerId;
    this.#config = init.config;
    this.#logger = init.logger;
    this.#executor = init.executor;
    this.#stopExecutor = init.owned?.stop ?? null;
    this.#state = new StateMachine<Lifecycle>({
      name: 'worker',
      initial: { kind: 'created' },
      transitions: { created: ['starting', 'stopped'], starting: ['running', 'stopped'], running: ['draining'], draining: ['stopped'], stopped: [] },
      logger: init.logger,
    });
    const parts = buildWorkerParts({
      config: init.config,
      workerId: init.workerId,
      workerToken: init.workerToken,
      runPublicKey: init.runPublicKey,
      executor: init.executor,
      base: init.base,
      logger: init.logger,
      reconnect: init.reconnect,
      healthHost: init.healthHost,
      onJoined: () => this.#onJoined(),
      onRefused: (reason) => this.#refused(reason),
      readiness: () => this.#readiness(),
    });
    this.#connection = parts.connection;
    this.#lanes = parts.lanes;
    this.#wakeOrder = parts.wakeOrder;
    this.#metrics = parts.metrics;
    this.#runs = parts.runs;
    this.#health = parts.health;
  }

  get state(): WorkerState {
    return this.#state.kind;
  }

  get connectionState(): ConnectionState {
    return this.#connection.state;
  }

  /** The bound port of the health and metrics server (after `start()`). */
  get healthPort(): number {
    return this.#health.port;
  }

  get activeRunIds(): string[] {
    return this.#runs.activeRunIds;
  }

  get lanes(): LaneSnapshot[] {
    return this.#lanes.map(laneSnapshot);
  }

  /**
   * Binds the health port and opens the connection. Resolves once both are
   * under way: the lanes start claiming when `worker:queue` is joined, and the
   * connection retries for ever, so a worker may start before its server.
   */
  start(): Promise<void> {
    const current = this.#state.current;
    if (current.kind !== 'created' && current.started !== null) return current.started;
    // Not started yet: moves to `starting` (or throws, for a worker stopped before it started).
    const { promise: started, resolve, reject } = Promise.withResolvers<void>();
    const starting = this.#state.to({ kind: 'starting', started, stopping: null });
    this.#listenAndConnect(starting).then(resolve, reject);
    return started;
  }

  async #listenAndConnect(starting: Extract<Lifecycle, { kind: 'starting' }>): Promise<void> {
    try {
      await this.#health.listen();
    } catch (error) {
      this.#state.to({ kind: 'stopped', started: starting.started, stopping: starting.stopping });
      await this.#stopExecutor?.();
      throw new LanesError('HEALTH_PORT_UNAVAILABLE', `cannot listen on port ${this.#config.port}`, { cause: error });
    }
    this.#state.to({ kind: 'running', started: starting.started });
    this.#connection.connect();
    this.#logger.info(
      {
        lanes: this.#config.workloops.map((lane) => lane.id),
        capacity: this.#config.capacity,
        runMemoryLimitMb: this.#config.runMemoryLimitMb,
        memoryCeilingMb: this.#config.memoryCeilingMb,
        memory: describeMemory(this.#config),
        healthPort: this.#health.port,
        servers: this.#config.lightningUrls,
      },
      'worker started',
    );
  }

  /** Resolves when `worker:queue` is joined (at once if it is). */
  async whenConnected(signal?: AbortSignal): Promise<void> {
    while (this.#connection.state !== 'joined') {
      signal?.throwIfAborted();
      if (this.#state.kind === 'stopped') throw new LanesError('WORKER_STOPPED', 'the worker stopped');
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }

  /**
   * Graceful by default: stop claiming, wait for claims in flight, let runs
   * finish up to `shutdownTimeoutMs`, kill the rest (reported `kill`,
   * `ShutdownError`), leave the channels and close. `force` kills and closes at
   * once, and also hurries a graceful stop already in flight.
   */
  stop(options: { force?: boolean } = {}): Promise<void> {
    const current = this.#state.current;
    const inFlight = current.kind === 'created' || current.kind === 'running' ? null : current.stopping;
    if (options.force === true && !this.#force.signal.aborted) {
      this.#force.abort();
      // Hurries lanes of a graceful stop already waiting for their claims.
      if (inFlight !== null) for (const lane of this.#lanes) void lane.stop({ force: true });
    }
    if (inFlight !== null) return inFlight;
    const { promise: stopping, resolve, reject } = Promise.withResolvers<void>();
    let shutdown: Promise<void>;
    switch (current.kind) {
      case 'draining':
        return current.stopping;
      case 'created':
        this.#state.to({ kind: 'stopped', started: null, stopping });
        shutdown = this.#stopExecutor?.() ?? Promise.resolve();
        break;
      case 'starting':
        // Drains once the start is done (a start that failed has stopped the worker already).
        current.stopping = stopping;
        shutdown = current.started.catch(() => {}).then(() => this.#shutdown(stopping));
        break;
      case 'running':
        shutdown = this.#shutdown(stopping);
        break;
      case 'stopped':
        // Stopped by a failed start: nothing to stop.
        shutdown = Promise.resolve();
        break;
    }
    shutdown.then(resolve, reject);
    return stopping;
  }

  async #shutdown(stopping: Promise<void>): Promise<void> {
    const running = this.#state.when('running');
    if (running === undefined) return;
    const force = this.#force.signal;
    this.#state.to({ kind: 'draining', started: running.started, stopping });
    this.#logger.info({ activeRuns: this.#runs.size, force: force.aborted }, 'worker draining');

    await drainWorker({
      lanes: this.#lanes,
      runs: this.#runs,
      shutdownTimeoutMs: this.#config.shutdownTimeoutMs,
      force,
      logger: this.#logger,
      releaseClaims: () => this.#connection.releaseClaims(),
    });

    // 3. Leave, close, free the port, stop the engine we own.
    await this.#connection.close();
    await this.#health.close();
    await this.#stopExecutor?.();
    this.#state.to({ kind: 'stopped', started: running.started, stopping });
    this.#logger.info({ unfinishedRuns: this.#runs.size }, 'worker stopped');
  }

  /** The server rejects what this worker declared: retrying would loop for ever, so stop now. */
  #refused(reason: string): void {
    this.#markRefused(new LanesError('JOIN_REFUSED', `the server refused the worker's lanes: ${reason}`));
    void this.stop({ force: true });
  }

  #onJoined(): void {
    if (this.#state.kind !== 'running') return;
    if (this.#connection.reconnects > 0) this.#metrics.reconnected();
    // Pinning lanes first, as for a push (worker-parts.ts, lanesToWake): their claims go out before a `*` lane's.
    for (const lane of this.#wakeOrder) {
      lane.start();
      // A rejoin may follow missed work-available pushes: every lane with a free slot asks now.
      lane.workAvailable();
    }
  }

  #readiness(): Readiness {
    const connected = this.#connection.state === 'joined';
    return {
      ready: this.#state.kind === 'running' && connected,
      body: { workerId: this.workerId, state: this.#state.kind, connection: this.#connection.state, lanes: this.lanes },
    };
  }
}
