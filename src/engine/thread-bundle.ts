/**
 * The code pooled children load, bundled into one ES module per entry, named
 * by its content so a worker never loads a bundle of other sources, and
 * reused across restarts:
 *
 * - the run thread's (run-thread.ts, the compiler, @openfn/runtime and the
 *   rest), loaded by every run's fresh thread;
 * - the child process's own (child-main.ts and what it imports): loaded as
 *   plain JavaScript, a child never starts Node's TypeScript stripper, which
 *   would stay resident in every child (about 17 MB each, docs/memory.md).
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundleSource, contentHash, fileExists, writeBundle } from '../runtime/bundle.ts';

/** The thread's entry in source form: what a child loads when there is no bundle. */
export const THREAD_SOURCE_URL = new URL('./run-thread.ts', import.meta.url);
/** The child process's entry in source form. */
export const CHILD_SOURCE_URL = new URL('./child-main.ts', import.meta.url);

async function buildBundle(cacheDir: string, source: URL, name: string): Promise<string> {
  const code = await bundleSource(fileURLToPath(source));
  const filePath = path.join(cacheDir, `${name}-${contentHash(code)}.js`);
  if (!(await fileExists(filePath))) await writeBundle(cacheDir, filePath, code);
  return filePath;
}

/** Builds (or finds) the thread bundle in `cacheDir` and returns its path. Rejects with `BundleError`. */
export function buildThreadBundle(cacheDir: string): Promise<string> {
  return buildBundle(cacheDir, THREAD_SOURCE_URL, 'run-thread');
}

/** Builds (or finds) the child process's bundle in `cacheDir` and returns its path. Rejects with `BundleError`. */
export function buildChildBundle(cacheDir: string): Promise<string> {
  return buildBundle(cacheDir, CHILD_SOURCE_URL, 'child-main');
}
