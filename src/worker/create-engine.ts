/**
 * Creates the real engine for a worker that was not handed an executor: a
 * pool of one child per slot (the worker's capacity) plus `spareChildren`, sized and limited from
 * the worker config. `overrides` lets the CLI pass its environment and tests
 * pass local adaptors.
 */
import type { Logger } from 'pino';
import type { WorkerConfig } from '../config/worker-config.ts';
import { Engine } from '../engine/index.ts';
import { pinsQueues } from '../lanes/parse-workloops.ts';
import type { EngineOptions, RunExecutor } from '../engine/index.ts';

export interface OwnedEngine {
  executor: RunExecutor;
  stop: () => Promise<void>;
}

export type EngineOverrides = Partial<Omit<EngineOptions, 'logger'>>;

/** Slots of the lanes that pin their queues (no "*"): their runs are urgent (run-attempt.ts). */
function pinnedSlots(config: WorkerConfig): number {
  return config.workloops.filter(pinsQueues).reduce((sum, lane) => sum + lane.capacity, 0);
}

export async function createWorkerEngine(config: WorkerConfig, logger: Logger, overrides: EngineOverrides = {}): Promise<OwnedEngine> {
  const engine = await Engine.create({
    // One child per slot, plus spares: a run never waits for the spare thread of the child its lane just used.
    poolSize: config.capacity + config.spareChildren,
    runMemoryLimitMb: config.runMemoryLimitMb,
    maxRunMemoryLimitMb: config.memory.largestRunMb,
    idleChildTimeoutMs: config.idleChildTimeoutMs,
    // Kept warm however long they idle: one per slot of a lane that pins its queues (no "*"), like the fast lane,
    // and at least one. The spares serve lanes that free and refill at once: forked again once runs come, they
    // retire with the others when no run has come for the timeout.
    minWarmChildren: Math.max(1, pinnedSlots(config)),
    warmChildrenWhenActive: Math.max(1, pinnedSlots(config)) + config.spareChildren,
    // A pinned lane's run never waits for a thread's boot while a booted child is idle: one booted idle child
    // per pinned slot is left to them (docs/engine.md, "Pool"). The engine's boot gate (maxConcurrentBoots) is
    // not set: one boot at a time cut a wildcard lane's throughput beside a pinned lane from 6.9 to 2.6 runs/s
    // on two loaded cores, and did not measurably help the pinned lane (docs/engine.md, "Side by side").
    reservedWarmChildren: pinnedSlots(config),
    // With a ceiling, each child is held to what the ceiling counted for it (docs/memory.md).
    ...(config.memory.bounded ? { rssHeadroomMb: config.memory.childMb, maxIdleChildRssMb: config.memory.childMb } : {}),
    repoDir: config.repoDir,
    adaptorAllowList: config.adaptorAllowList,
    preloadAdaptors: config.preloadAdaptors,
    bundleCode: config.bundleCode,
    childNice: config.childNice,
    backgroundNice: config.backgroundNice,
    ...overrides,
    // The engine binds `component: 'engine'` itself.
    logger,
  });
  return { executor: engine, stop: () => engine.stop() };
}
