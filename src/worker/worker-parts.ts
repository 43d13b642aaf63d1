/**
 * The parts a `Worker` is made of, built and wired to each other: the
 * connection to the server, one `Workloop` per lane, the runs they start,
 * the metrics and the health server. The worker's own lifecycle (start,
 * drain, stop) stays in `worker.ts`; what it must hear from the parts comes
 * back through the three hooks.
 */
import type { Logger } from 'pino';
import packageJson from '../../package.json' with { type: 'json' };
import type { WorkerConfig } from '../config/worker-config.ts';
import type { RunExecutor } from '../engine/types.ts';
import { Workloop } from '../lanes/workloop.ts';
import { chainCouldTake } from '../protocol/queue-chain.ts';
import { CAPABILITY_MEMORY_CLAIMS, WILDCARD } from '../protocol/events.ts';
import type { SigningKey } from '../protocol/tokens.ts';
import { HealthServer } from './health-server.ts';
import type { Readiness } from './health-server.ts';
import { QueueConnection } from './queue-connection.ts';
import { queueJoinPayload } from './worker-join.ts';
import { laneMemories } from './worker-memory.ts';
import { WorkerMetrics } from './worker-metrics.ts';
import { WorkerRuns } from './worker-runs.ts';

export const WORKER_VERSION: string = packageJson.version;

export interface WorkerPartsInit {
  config: WorkerConfig;
  workerId: string;
  workerToken: string;
  runPublicKey: SigningKey | null;
  executor: RunExecutor;
  /** The worker's base logger (with `workerId`): each part binds its own `component` on it. */
  base: Logger;
  /** The worker's own logger (`component: 'worker'`), which the runs log on. */
  logger: Logger;
  reconnect: Readonly<{ minMs: number; maxMs: number }> | undefined;
  healthHost: string | undefined;
  /** `worker:queue` was joined (again). */
  onJoined: () => void;
  /** The server refused the worker's lanes for good. */
  onRefused: (reason: string) => void;
  /** What `/readyz` answers. */
  readiness: () => Readiness;
}

export interface WorkerParts {
  connection: QueueConnection;
  lanes: Workloop[];
  /** The same lanes, those that pin their queues first: the order in which they start and wake. */
  wakeOrder: readonly Workloop[];
  metrics: WorkerMetrics;
  runs: WorkerRuns;
  health: HealthServer;
}

export function buildWorkerParts(init: WorkerPartsInit): WorkerParts {
  const { config, executor } = init;
  const laneMemory = laneMemories(config);
  // The connection and the metrics call back into the lanes and the runs, built after them: only once running.
  const wakeOrder: Workloop[] = [];
  const connection = new QueueConnection({
    urls: config.lightningUrls,
    workerToken: init.workerToken,
    workerVersion: WORKER_VERSION,
    workerName: config.workerName === '' ? null : config.workerName,
    join: queueJoinPayload(config, laneMemory),
    claimTimeoutMs: config.claimTimeoutMs,
    messageTimeoutMs: config.messageTimeoutMs,
    reconnect: init.reconnect ?? { minMs: 250, maxMs: 10_000 },
    logger: init.base.child({ component: 'connection' }),
    onJoined: init.onJoined,
    onDisconnected: () => {},
    onRefused: init.onRefused,
    onWorkAvailable: (queues) => {
      for (const lane of lanesToWake(wakeOrder, queues)) lane.workAvailable();
    },
    onRunCancel: (runId) => runs.cancel(runId),
  });
  const metrics = new WorkerMetrics(
    () => lanes,
    init.workerId,
    config.memoryCeilingMb,
    (lane) => lane.activeRunIds.reduce((sum, runId) => sum + (executor.runRssBytes?.(runId) ?? 0), 0),
    () => ({ workerMb: config.memory.workerMb, children: executor.childCount?.() ?? 0, childMb: config.memory.childMb }),
  );
  const runs = new WorkerRuns({ config, channels: connection, executor, runPublicKey: init.runPublicKey, metrics, logger: init.logger });
  const lanes = config.workloops.map(
    (spec, index) =>
      new Workloop({
        spec,
        claimer: connection,
        startRun: (run, lane, memoryMb) => runs.start(run, lane, memoryMb),
        ...(laneMemory[index] === undefined ? {} : { memory: laneMemory[index] }),
        memoryClaims: () => connection.features.capabilities.has(CAPABILITY_MEMORY_CLAIMS),
        backoff: config.backoff,
        logger: init.base.child({ component: 'lane', lane: spec.id }),
        onClaimSettled: (event) => metrics.claimSettled(event),
        onBacklogged: (run) => runs.hold(run),
      }),
  );
  // Lanes that pin their queues come first: when several wake at once their claims go out in this order.
  wakeOrder.push(...lanes.filter((lane) => !lane.spec.queues.includes(WILDCARD)), ...lanes.filter((lane) => lane.spec.queues.includes(WILDCARD)));
  const health = new HealthServer({
    port: config.port,
    ...(init.healthHost === undefined ? {} : { host: init.healthHost }),
    registry: metrics.registry,
    readiness: init.readiness,
    logger: init.base.child({ component: 'health' }),
  });
  return { connection, lanes, wakeOrder, metrics, runs, health };
}

/**
 * The lanes a `work-available` push wakes. Named queues (`work_queues`) wake
 * the lanes that could take one of them, and null (a push without names, as
 * Lightning sends) wakes every lane. But a lane that takes any queue (`*`)
 * may claim a run of a queue that another lane pins, queued just after the
 * push: woken alone, it would take the pinned lane's run while that lane sits
 * free. So a push that wakes a `*` lane wakes every lane, the pinning lanes
 * first (`lanes` is in that order), and their claims go out before its.
 */
export function lanesToWake(lanes: readonly Workloop[], queues: readonly string[] | null): readonly Workloop[] {
  if (queues === null) return lanes;
  const named = lanes.filter((lane) => chainCouldTake(lane.spec.queues, queues));
  return named.some((lane) => lane.spec.queues.includes(WILDCARD)) ? lanes : named;
}
