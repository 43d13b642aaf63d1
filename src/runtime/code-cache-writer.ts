/**
 * Writes V8 code caches for bundles (code-cache.ts) from the worker process,
 * through a short-lived helper process (code-cache-writer-main.ts): compiling
 * an ES module for V8's cache needs `--experimental-vm-modules`, which the
 * worker does not run with. The helper is the worker's own code, started
 * with an empty environment, and runs no bundle code.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const WRITER = fileURLToPath(new URL('./code-cache-writer-main.ts', import.meta.url));

/** Writing caches may fail without harm: the bundles then load without them. */
export class CodeCacheError extends Error {
  override name = 'CodeCacheError';
}

/** Writes the code cache of each bundle in `bundlePaths` beside it. Rejects with `CodeCacheError`. */
export function writeCodeCaches(bundlePaths: readonly string[]): Promise<void> {
  if (bundlePaths.length === 0) return Promise.resolve();
  const args = ['--experimental-vm-modules', '--disable-warning=ExperimentalWarning', WRITER, ...bundlePaths];
  return new Promise((resolve, reject) => {
    execFile(process.execPath, args, { timeout: 120_000, maxBuffer: 64 * 1024, env: {} }, (error, _stdout, stderr) => {
      if (error) reject(new CodeCacheError(stderr.trim().split('\n').at(-1) || `could not write code caches: ${error.message}`, { cause: error }));
      else resolve();
    });
  });
}
