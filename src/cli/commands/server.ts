import { randomBytes } from 'node:crypto';
import type { Argv } from 'yargs';
import { resolveServerConfig, SERVER_OPTIONS } from '../../config/server-config.ts';
import { LanesServer } from '../../server/index.ts';
import type { CliContext } from '../cli-context.ts';
import { EXIT_OK } from '../exit-codes.ts';
import { createRootLogger } from '../logger.ts';
import { checkDatabasePath, listenFailure } from '../start-failure.ts';
import type { StartFailure } from '../start-failure.ts';
import { declareOptions, pickFlags } from '../option-builder.ts';

export const command = 'server';
export const describe = 'Run the orchestration server: JSON API, worker socket, queues in SQLite or PostgreSQL';

export function builder<T>(yargs: Argv<T>): Argv<T> {
  return declareOptions(yargs, SERVER_OPTIONS);
}

/**
 * `lanes server`: listens until SIGTERM/SIGINT, then closes sockets and the database last. A server
 * that cannot start says why in one line on stderr and exits 2 (configuration) or 1 (environment).
 */
export async function handler(argv: Record<string, unknown>, ctx: CliContext): Promise<number> {
  const config = resolveServerConfig(pickFlags(argv, SERVER_OPTIONS), ctx.env, { isTty: ctx.isTty });
  const dbProblem = checkDatabasePath(config.dbPath, ctx.cwd);
  if (dbProblem !== null) return refuse(ctx, dbProblem);
  const logger = createRootLogger({ level: config.logLevel, format: config.logFormat, name: 'lanes-server' });
  let apiTokens = config.apiTokens;
  if (apiTokens.length === 0) {
    // Only on loopback (the config refuses a wider host without one): a token for this process's life, shown
    // to whoever started it, never logged.
    apiTokens = [randomBytes(24).toString('hex')];
    ctx.err(`lanes server: no --api-token set; the JSON API takes this one until the server stops: ${apiTokens[0]}`);
  }
  const server = await LanesServer.create({
    port: config.port,
    host: config.host,
    dbPath: config.dbPath,
    retainMs: config.retainDays === null ? null : config.retainDays * 86_400_000,
    secret: config.secret,
    apiTokens,
    reconnectGraceMs: config.reconnectGraceMs,
    ...(config.privateKeyPem ? { privateKeyPem: config.privateKeyPem } : {}),
    logger,
  });
  const stopped = new Promise<void>((resolve) => {
    ctx.onShutdownSignal((count, signal) => {
      logger.info({ signal, count }, 'shutdown signal');
      void server.stop().then(resolve, (error: unknown) => {
        logger.error({ err: error }, 'stop failed');
        resolve();
      });
    });
  });
  try {
    await server.start();
  } catch (error) {
    await server.stop();
    return refuse(ctx, listenFailure(error, config.host, config.port));
  }
  await stopped;
  return EXIT_OK;
}

function refuse(ctx: CliContext, failure: StartFailure): number {
  ctx.err(`lanes: ${failure.message}`);
  return failure.exitCode;
}
