/**
 * Creates the real engine for a worker that was not handed an executor: a
 * group of children per lane (see `laneGroups`), sized and limited from
 * the worker config. `overrides` lets the CLI pass its environment and tests
 * pass local adaptors.
 */
import type { Logger } from 'pino';
import type { WorkerConfig } from '../config/worker-config.ts';
import { Engine } from '../engine/index.ts';
import type { EngineOptions, RunExecutor } from '../engine/index.ts';

export interface OwnedEngine {
  executor: RunExecutor;
  stop: () => Promise<void>;
}

export type EngineOverrides = Partial<Omit<EngineOptions, 'logger'>>;

export async function createWorkerEngine(config: WorkerConfig, logger: Logger, overrides: EngineOverrides = {}): Promise<OwnedEngine> {
  const engine = await Engine.create({
    poolSize: config.capacity + config.spareChildren,
    groups: laneGroups(config),
    runMemoryLimitMb: config.runMemoryLimitMb,
    repoDir: config.repoDir,
    adaptorAllowList: config.adaptorAllowList,
    preloadAdaptors: config.preloadAdaptors,
    ...overrides,
    logger: logger.child({ component: 'engine' }),
  });
  return { executor: engine, stop: () => engine.stop() };
}

/**
 * One group of children per lane: its slots plus `spareChildren`. A lane's
 * runs only use its own children, so a burst on the general lanes can never
 * take the warm children a fast lane is counting on, and a spare per lane
 * means a lane that frees a slot and refills it at once finds a child whose
 * warm thread has booted.
 */
export function laneGroups(config: Pick<WorkerConfig, 'workloops' | 'spareChildren'>): Record<string, number> {
  const groups: Record<string, number> = {};
  for (const lane of config.workloops) groups[lane.id] = (groups[lane.id] ?? 0) + lane.capacity + config.spareChildren;
  return groups;
}
