import type { Argv } from 'yargs';
import type { Logger } from 'pino';
import { resolveWorkerConfig, redactWorkerConfig, WORKER_OPTIONS } from '../../config/worker-config.ts';
import type { WorkerConfig } from '../../config/worker-config.ts';
import type { CliContext } from '../cli-context.ts';
import { EXIT_FAILURE, EXIT_OK } from '../exit-codes.ts';
import { createRootLogger } from '../logger.ts';
import { declareOptions, pickFlags } from '../option-builder.ts';

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

async function runWorker(config: WorkerConfig, logger: Logger, ctx: CliContext): Promise<number> {
  void ctx;
  logger.error({ lanes: config.workloops.map((lane) => lane.id) }, 'worker not yet implemented');
  return EXIT_FAILURE;
}
