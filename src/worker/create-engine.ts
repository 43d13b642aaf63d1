/**
 * Creates the real engine for a worker that was not handed an executor.
 * TODO(issue 5): import `Engine` statically once src/engine/index.ts lands;
 * until then it is looked up at run time so the worker builds without it.
 */
import type { Logger } from 'pino';
import type { WorkerConfig } from '../config/worker-config.ts';
import type { RunExecutor } from '../engine/types.ts';
import { LanesError } from '../errors/lanes-error.ts';

export interface OwnedEngine {
  executor: RunExecutor;
  stop: () => Promise<void>;
}

interface EngineLike extends RunExecutor {
  stop(): Promise<void>;
}

interface EngineModule {
  Engine: { create(options: { config: WorkerConfig; logger: Logger }): Promise<EngineLike> };
}

export async function createWorkerEngine(config: WorkerConfig, logger: Logger): Promise<OwnedEngine> {
  const specifier = '../engine/index.ts';
  let module: Partial<EngineModule>;
  try {
    module = (await import(specifier)) as Partial<EngineModule>;
  } catch (error) {
    throw new LanesError('ENGINE_UNAVAILABLE', 'the engine is not available; pass an executor', { cause: error });
  }
  if (module.Engine === undefined) throw new LanesError('ENGINE_UNAVAILABLE', 'src/engine/index.ts exports no Engine');
  const engine = await module.Engine.create({ config, logger: logger.child({ component: 'engine' }) });
  return { executor: engine, stop: () => engine.stop() };
}
