import type { Argv } from 'yargs';
import type { Logger } from 'pino';
import { resolveWorkerConfig, redactWorkerConfig, WORKER_OPTIONS } from '../../config/worker-config.ts';
import type { WorkerConfig } from '../../config/worker-config.ts';
import type { CliContext } from '../cli-context.ts';
import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE } from '../exit-codes.ts';
import { createRootLogger } from '../logger.ts';
import { listenFailure } from '../start-failure.ts';
import { LanesError } from '../../errors/lanes-error.ts';
import { declareOptions, pickFlags } from '../option-builder.ts';
import { Worker } from '../../worker/index.ts';

export const command = 'worker';
export const describe = 'Run a worker: claim runs from the server on each lane and execute them';

export function builder<T>(yargs: Argv<T>): Argv<T> {
  return declareOptions(yargs, WORKER_OPTIONS).option('dry-run', {
    type: 'boolean',
    describe: 'Print the resolved configuration as JSON (secrets redacted) and exit without connecting',
  });
}

/** `lanes worker`: resolves the config (a `ConfigError` bubbles up to exit 2), then runs until signalled. */
export async function handler(argv: Record<string, unknown>, ctx: CliContext): Promise<number> {
  const { config, warnings } = resolveWorkerConfig(pickFlags(argv, WORKER_OPTIONS), ctx.env, { isTty: ctx.isTty });
  if (argv['dry-run'] === true) {
    for (const warning of warnings) ctx.err(`warning: ${warning}`);
    ctx.out(JSON.stringify(redactWorkerConfig(config), null, 2));
    return EXIT_OK;
  }
  const logger = createRootLogger({ level: config.logLevel, format: config.logFormat, name: 'lanes-worker' });
  for (const warning of warnings) logger.warn({ detail: warning }, 'workloops warning');
  return runWorker(config, logger, ctx);
}

/**
 * Starts the worker and waits for a signal: the first SIGTERM/SIGINT drains
 * (stop claiming, let runs finish up to the shutdown timeout, kill the rest),
 * a second one forces the stop at once. Exit 0 once stopped.
 */
async function runWorker(config: WorkerConfig, logger: Logger, ctx: CliContext): Promise<number> {
  let worker: Worker;
  try {
    // The engine's children pick their environment from the CLI's, through its allow-list.
    worker = await Worker.create({ config, logger, engine: { env: ctx.env } });
    await worker.start();
  } catch (error) {
    // One line on stderr, like every failure to start: the health port, the engine's children.
    const failure = error instanceof LanesError && error.code === 'HEALTH_PORT_UNAVAILABLE'
      ? listenFailure(error.cause, '0.0.0.0', config.port)
      : { exitCode: EXIT_FAILURE, message: `cannot start: ${error instanceof Error ? error.message : String(error)}` };
    ctx.err(`lanes worker: ${failure.message}`);
    return failure.exitCode;
  }
  const stopped = new Promise<number>((resolve) => {
    ctx.onShutdownSignal((count, signal) => {
      logger.info({ signal, force: count > 1 }, count > 1 ? 'second signal: stopping now' : 'signal: draining');
      worker.stop({ force: count > 1 }).then(() => resolve(EXIT_OK), (error: unknown) => {
        logger.error({ err: error }, 'worker stop failed');
        resolve(EXIT_OK);
      });
    });
    // A refusal retrying cannot fix (the server rejects the lanes) is a configuration error: one line, exit 2.
    void worker.refused.then(async (error) => {
      await worker.stop({ force: true }).catch(() => undefined);
      ctx.err(`lanes worker: ${error.message}`);
      resolve(EXIT_USAGE);
    });
  });
  return stopped;
}
