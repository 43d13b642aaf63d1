/**
 * The `lanes` executable. This is the only module that touches `process`:
 * it hands env, output and signals to the commands and sets the exit code.
 */
import { runCli } from './run-cli.ts';
import type { CliContext } from './cli-context.ts';

const signalHandlers: Array<(count: number, signal: string) => void> = [];
let signalCount = 0;
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.on(signal, () => {
    signalCount += 1;
    if (signalHandlers.length === 0) process.exit(128 + (signal === 'SIGINT' ? 2 : 15));
    for (const handler of signalHandlers) handler(signalCount, signal);
  });
}

const ctx: CliContext = {
  env: process.env,
  cwd: process.cwd(),
  isTty: Boolean(process.stdout.isTTY),
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
  onShutdownSignal: (handler) => {
    signalHandlers.push(handler);
  },
  onExit: (handler) => {
    process.on('exit', handler);
  },
};

try {
  process.exitCode = await runCli(process.argv.slice(2), ctx);
} catch (error) {
  process.stderr.write(`lanes: unexpected error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exitCode = 1;
}
