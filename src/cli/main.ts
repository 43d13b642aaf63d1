/**
 * The `lanes` executable. This is the only module that touches `process`:
 * it hands env, output and signals to the commands and sets the exit code.
 *
 * Signals: the first SIGTERM/SIGINT asks the command to stop (the worker
 * drains); a second one forces it, and the process exits within
 * FORCED_EXIT_MS whatever is still pending. Once the command returns, the
 * process exits at once: a timer still armed below (a claim's push timeout,
 * a reconnect) never keeps a stopped worker alive.
 */
import { runCli } from './run-cli.ts';
import type { CliContext } from './cli-context.ts';

/** After a second signal, the process is gone within this long even if the forced stop hangs. */
const FORCED_EXIT_MS = 1_500;
const SIGNAL_NUMBERS = { SIGINT: 2, SIGTERM: 15 } as const;

const signalHandlers: Array<(count: number, signal: string) => void> = [];
let signalCount = 0;

function onSignal(signal: keyof typeof SIGNAL_NUMBERS): void {
  signalCount += 1;
  if (signalHandlers.length === 0) process.exit(128 + SIGNAL_NUMBERS[signal]);
  if (signalCount === 2) {
    setTimeout(() => {
      process.stderr.write(`lanes: forced exit: still stopping ${FORCED_EXIT_MS} ms after the second signal\n`);
      process.exit(128 + SIGNAL_NUMBERS[signal]);
    }, FORCED_EXIT_MS).unref();
  }
  for (const handler of signalHandlers) handler(signalCount, signal);
}
for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, () => onSignal(signal));
// Started by bin/lanes.js on an older Node: that process forwards signals to us over nothing but
// kill(2); if it dies without a word (SIGKILL), the IPC channel closes and we stop as if told to.
if (process.channel !== undefined) {
  process.channel.unref();
  process.on('disconnect', () => onSignal('SIGTERM'));
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

let exitCode: number;
try {
  exitCode = await runCli(process.argv.slice(2), ctx);
} catch (error) {
  // One line, like every other failure; LANES_DEBUG=1 adds the stack for a bug report.
  const detail = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  process.stderr.write(`lanes: unexpected error: ${detail}\n`);
  if (process.env['LANES_DEBUG'] === '1' && error instanceof Error && error.stack !== undefined) process.stderr.write(`${error.stack}\n`);
  exitCode = 1;
}
process.exit(exitCode);
