/**
 * The worker (DESIGN.md): a connection to the server, one Workloop per lane,
 * the runs they start, an executor shared by the lanes, and the health and
 * metrics HTTP server.
 *
 * States (each change logged; others throw):
 *
 *   created   built by `create()`, nothing running      → starting | stopped
 *   starting  health server binding, socket opening     → running | stopped
 *   running   lanes claim once worker:queue is joined    → draining | stopped
 *   draining  stop(): no new claims, claims in flight    → stopped
 *             awaited, runs finish up to the shutdown
 *             timeout, then are killed (ShutdownError)
 *   stopped   channels left, socket closed, port freed
 *
 * `stop({force: true})` (or a second stop with force while draining) kills
 * the runs and closes at once. A claimed run is always started: a graceful
 * stop waits for claims in flight, and their runs are drained like the rest.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import packageJson from '../../package.json' with { type: 'json' };
import type { WorkerConfig } from '../config/worker-config.ts';
import type { RunExecutor } from '../engine/types.ts';
import { LanesError } from '../errors/lanes-error.ts';
import { Workloop } from '../lanes/workloop.ts';
import { CAPABILITY_MEMORY_CLAIMS } from '../protocol/events.ts';
import { importRunPublicKey, signWorkerToken } from '../protocol/tokens.ts';
import type { SigningKey } from '../protocol/tokens.ts';
import { createWorkerEngine } from './create-engine.ts';
import type { EngineOverrides } from './create-engine.ts';
import { HealthServer } from './health-server.ts';
import { laneSnapshot } from './lane-snapshot.ts';
import type { LaneSnapshot } from './lane-snapshot.ts';
import type { Readiness } from './health-server.ts';
import { QueueConnection } from './queue-connection.ts';
import type { ConnectionState } from './queue-connection.ts';
import { waitUntil } from './wait-until.ts';
import { queueJoinPayload } from './worker-join.ts';
import { describeMemory, laneMemories } from './worker-memory.ts';
import { WorkerMetrics } from './worker-metrics.ts';
import { WorkerRuns } from './worker-runs.ts';

export type WorkerState = 'created' | 'starting' | 'running' | 'draining' | 'stopped';

const TRANSITIONS: Record<WorkerState, readonly WorkerState[]> = {
  created: ['starting', 'stopped'],
  starting: ['running', 'stopped'],
  running: ['draining', 'stopped'],
  draining: ['stopped'],
  stopped: [],
};

export const WORKER_VERSION: string = packageJson.version;

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

export class WorkerStateError extends LanesError {
  constructor(from: WorkerState, to: WorkerState) {
    super('INVALID_WORKER_TRANSITION', `worker: invalid transition ${from} → ${to}`);
  }
}

export class Worker {
  readonly workerId: string;
  readonly #config: WorkerConfig;
  readonly #logger: Logger;
  readonly #executor: RunExecutor;
  readonly #stopExecutor: (() => Promise<void>) | null;
  readonly #connection: QueueConnection;
  readonly #lanes: Workloop[];
  readonly #metrics: WorkerMetrics;
  readonly #health: HealthServer;
  readonly #runs: WorkerRuns;
  readonly #force = new AbortController();
  #markRefused: (error: LanesError) => void = () => undefined;
  /** Settles when the server refuses this worker for good (its lanes); the worker is then stopping. */
  readonly refused: Promise<LanesError> = new Promise((resolve) => (this.#markRefused = resolve));
  #state: WorkerState = 'created';
  #starting: Promise<void> | null = null;
  #stopping: Promise<void> | null = null;

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
    const config = init.config;
    const laneMemory = laneMemories(config);
    this.#connection = new QueueConnection({
      urls: config.lightningUrls,
      workerToken: init.workerToken,
      workerVersion: WORKER_VERSION,
      workerName: config.workerName === '' ? null : config.workerName,
      join: queueJoinPayload(config, laneMemory),
      claimTimeoutMs: config.claimTimeoutMs,
      messageTimeoutMs: config.messageTimeoutMs,
      reconnect: init.reconnect ?? { minMs: 250, maxMs: 10_000 },
      logger: init.base.child({ component: 'connection' }),
      onJoined: () => this.#onJoined(),
      onDisconnected: () => {},
      onRefused: (reason) => this.#refused(reason),
      onWorkAvailable: () => {
        for (const lane of this.#lanes) lane.workAvailable();
      },
      onRunCancel: (runId) => this.#runs.cancel(runId),
    });
    this.#metrics = new WorkerMetrics(() => this.#lanes, this.workerId, config.memoryCeilingMb, (lane) =>
      lane.activeRunIds.reduce((sum, runId) => sum + (this.#executor.runRssBytes?.(runId) ?? 0), 0),
    );
    this.#runs = new WorkerRuns({
      config,
      channels: this.#connection,
      executor: this.#executor,
      runPublicKey: init.runPublicKey,
      metrics: this.#metrics,
      logger: this.#logger,
    });
    this.#lanes = config.workloops.map(
      (spec, index) =>
        new Workloop({
          spec,
          claimer: this.#connection,
          startRun: (run, lane, memoryMb) => this.#runs.start(run, lane, memoryMb),
          ...(laneMemory[index] === undefined ? {} : { memory: laneMemory[index] }),
          memoryClaims: () => this.#connection.features.capabilities.has(CAPABILITY_MEMORY_CLAIMS),
          backoff: config.backoff,
          logger: init.base.child({ component: 'lane', lane: spec.id }),
          onClaimSettled: (event) => this.#metrics.claimSettled(event),
          onBacklogged: (run) => this.#runs.hold(run),
        }),
    );
    this.#health = new HealthServer({
      port: config.port,
      ...(init.healthHost === undefined ? {} : { host: init.healthHost }),
      registry: this.#metrics.registry,
      readiness: () => this.#readiness(),
      logger: init.base.child({ component: 'health' }),
    });
  }

  get state(): WorkerState {
    return this.#state;
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
    if (this.#starting !== null) return this.#starting;
    this.#setState('starting');
    this.#starting = (async () => {
      try {
        await this.#health.listen();
      } catch (error) {
        this.#setState('stopped');
        await this.#stopExecutor?.();
        throw new LanesError('HEALTH_PORT_UNAVAILABLE', `cannot listen on port ${this.#config.port}`, { cause: error });
      }
      this.#setState('running');
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
    })();
    return this.#starting;
  }

  /** Resolves when `worker:queue` is joined (at once if it is). */
  async whenConnected(signal?: AbortSignal): Promise<void> {
    while (this.#connection.state !== 'joined') {
      signal?.throwIfAborted();
      if (this.#state === 'stopped') throw new LanesError('WORKER_STOPPED', 'the worker stopped');
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
    if (options.force === true && !this.#force.signal.aborted) {
      this.#force.abort();
      // Hurries lanes of a graceful stop already waiting for their claims.
      if (this.#stopping !== null) for (const lane of this.#lanes) void lane.stop({ force: true });
    }
    if (this.#stopping !== null) return this.#stopping;
    this.#stopping = this.#shutdown();
    return this.#stopping;
  }

  async #shutdown(): Promise<void> {
    if (this.#starting !== null) await this.#starting.catch(() => {});
    if (this.#state === 'stopped') return;
    if (this.#state === 'created') {
      this.#setState('stopped');
      await this.#stopExecutor?.();
      return;
    }
    const force = this.#force.signal;
    this.#setState('draining');
    this.#logger.info({ activeRuns: this.#runs.size, force: force.aborted }, 'worker draining');

    // 1. No new claims; claims in flight are awaited so their runs start (force abandons them). A claim
    //    the server does not answer within the shutdown timeout is given up: the server's lease brings
    //    back any run it handed out in that reply.
    const claimsSettled = await waitUntil(() => Promise.all(this.#lanes.map((lane) => lane.stop({ force: force.aborted }))).then(() => undefined), this.#config.shutdownTimeoutMs, force);
    if (!claimsSettled) {
      if (!force.aborted) this.#logger.warn({ shutdownTimeoutMs: this.#config.shutdownTimeoutMs }, 'claim unanswered at shutdown; giving it up');
      await Promise.all(this.#lanes.map((lane) => lane.stop({ force: true })));
    }

    // 2. Runs finish on their own until the shutdown timeout, or until a forced stop.
    const finished = await waitUntil(() => this.#allRunsDone(), this.#config.shutdownTimeoutMs, force);
    if (!finished) {
      this.#runs.killAll();
      // Reports of killed runs are bounded by the message timeout of each push; a forced stop does not wait.
      if (!force.aborted) await waitUntil(() => this.#allRunsDone(), Number.POSITIVE_INFINITY, force);
    }

    // 3. Leave, close, free the port, stop the engine we own.
    await this.#connection.close();
    await this.#health.close();
    await this.#stopExecutor?.();
    this.#setState('stopped');
    this.#logger.info({ unfinishedRuns: this.#runs.size }, 'worker stopped');
  }

  #allRunsDone(): Promise<void> {
    return Promise.all([...this.#lanes.map((lane) => lane.whenIdle()), this.#runs.whenEnded()]).then(() => {
      // A backlog run may have started while we waited: wait for it too.
      if (this.#runs.size > 0) return this.#allRunsDone();
      return undefined;
    });
  }

  /** The server rejects what this worker declared: retrying would loop for ever, so stop now. */
  #refused(reason: string): void {
    this.#markRefused(new LanesError('JOIN_REFUSED', `the server refused the worker's lanes: ${reason}`));
    void this.stop({ force: true });
  }

  #onJoined(): void {
    if (this.#state !== 'running') return;
    if (this.#connection.reconnects > 0) this.#metrics.reconnected();
    for (const lane of this.#lanes) {
      lane.start();
      // A rejoin may follow missed work-available pushes: every lane with a free slot asks now.
      lane.workAvailable();
    }
  }

  #readiness(): Readiness {
    const connected = this.#connection.state === 'joined';
    return {
      ready: this.#state === 'running' && connected,
      body: { workerId: this.workerId, state: this.#state, connection: this.#connection.state, lanes: this.lanes },
    };
  }

  #setState(next: WorkerState): void {
    const from = this.#state;
    if (!TRANSITIONS[from].includes(next)) throw new WorkerStateError(from, next);
    this.#state = next;
    this.#logger.debug({ from, to: next }, 'worker state changed');
  }
}
