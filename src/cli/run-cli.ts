/**
 * The `lanes` command line: yargs wiring of the subcommands. Every handler
 * returns an exit code; configuration errors become one line on stderr and
 * exit code 2, never a stack trace.
 */
import yargs from 'yargs';
import { LANES_VERSION } from '../version.ts';
import { ConfigError } from '../errors/config-error.ts';
import type { CliContext } from './cli-context.ts';
import { attachDashedValues } from './dashed-values.ts';
import { EXIT_OK, EXIT_USAGE } from './exit-codes.ts';
import * as worker from './commands/worker.ts';
import * as submit from './commands/submit.ts';
import * as dev from './commands/dev.ts';
import * as server from './commands/server.ts';
import * as copyDb from './commands/copy-db.ts';

/** Thrown from yargs' fail hook so usage errors leave the parser as one line. */
class UsageError extends Error {}

export async function runCli(rawArgs: readonly string[], ctx: CliContext): Promise<number> {
  // pnpm and some npm setups pass a leading `--` through (`npx lanes -- worker …`): it is not an argument.
  const args = rawArgs[0] === '--' ? rawArgs.slice(1) : rawArgs;
  let exitCode: number = EXIT_OK;
  const run = (handler: (argv: Record<string, unknown>) => Promise<number> | number) => async (argv: Record<string, unknown>) => {
    exitCode = await handler(argv);
  };

  const parser = yargs(attachDashedValues(args))
    .scriptName('lanes')
    .usage('$0 <command> [options]')
    .version(`lanes ${LANES_VERSION} (node ${process.version})`)
    .command(worker.command, worker.describe, (y) => worker.builder(y), run((argv) => worker.handler(argv, ctx)))
    .command(server.command, server.describe, (y) => server.builder(y), run((argv) => server.handler(argv, ctx)))
    .command(dev.command, dev.describe, (y) => dev.builder(y), run((argv) => dev.handler(argv, ctx)))
    .command(submit.command, submit.describe, (y) => submit.builder(y), run((argv) => submit.handler(argv, ctx)))
    .command(copyDb.command, copyDb.describe, (y) => copyDb.builder(y), run((argv) => copyDb.handler(argv, ctx)))
    .demandCommand(1, 'name a command: worker, server, dev, submit or copy-db')
    .strict()
    .help()
    .alias('help', 'h')
    .wrap(110)
    .exitProcess(false)
    .fail((message, error) => {
      throw error ?? new UsageError(message ?? 'bad usage');
    });

  try {
    await parser.parseAsync();
    return exitCode;
  } catch (error) {
    if (error instanceof UsageError && args.length === 0) {
      // Bare `lanes`: the list of commands is the answer.
      ctx.err(await parser.getHelp());
      return EXIT_USAGE;
    }
    if (error instanceof ConfigError || error instanceof UsageError) {
      ctx.err(`lanes: ${error.message}`);
      return EXIT_USAGE;
    }
    throw error;
  }
}
