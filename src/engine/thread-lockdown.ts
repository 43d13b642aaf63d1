/**
 * Closes, inside a run's thread, what the permission model
 * (`child-permissions.ts`) leaves open to code that escapes the `vm` context:
 *
 * - `new Worker(…, { execArgv: [] })` starts a thread *without* the
 *   permission model (Node applies it through execArgv), from which child
 *   processes and file reads work again. Runs never start threads, so
 *   `Worker` is replaced by a constructor that throws.
 * - `process.kill` (and the raw `process._kill`) is not covered by the model:
 *   job code could signal the worker or the other children. Replaced too.
 * - `process.dlopen` loads native code; the model refuses it already, this
 *   makes the refusal independent of flags.
 * - `os.setPriority`: a worker running as root must not let job code raise
 *   its thread's priority above the worker's own.
 *
 * The replacements are non-writable and non-configurable, and ESM named
 * exports of the builtin are re-synced, so `import { Worker }` sees the same.
 * Called once per thread before any run code is loaded.
 */
import { createRequire, syncBuiltinESMExports } from 'node:module';

export class SandboxError extends Error {
  override name = 'SandboxError';
}

/** A plain function (not an arrow) so that `new` on it throws the same error. */
function refuse(what: string): () => never {
  return function refused(): never {
    throw new SandboxError(`${what} is not available to job code`);
  };
}

function pin(target: object, key: string, value: unknown): void {
  Object.defineProperty(target, key, { value, writable: false, configurable: false, enumerable: true });
}

export function lockDownThread(): void {
  const require = createRequire(import.meta.url);
  const os = require('node:os') as Record<string, unknown>;
  pin(os, 'setPriority', refuse('os.setPriority'));
  const workerThreads = require('node:worker_threads') as Record<string, unknown>;
  pin(workerThreads, 'Worker', refuse('worker_threads.Worker'));
  syncBuiltinESMExports();
  const proc = process as unknown as Record<string, unknown>;
  pin(proc, 'kill', refuse('process.kill'));
  pin(proc, '_kill', refuse('process._kill'));
  pin(proc, 'dlopen', refuse('process.dlopen'));
}
