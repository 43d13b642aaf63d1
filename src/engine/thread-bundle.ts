/**
 * The run thread's code (run-thread.ts, the compiler, @openfn/runtime and
 * the rest) bundled into one ES module, named by its content so a worker
 * never loads a bundle of other sources, and reused across restarts.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundleSource, contentHash, fileExists, writeBundle } from '../runtime/bundle.ts';

/** The thread's entry in source form: what a child loads when there is no bundle. */
export const THREAD_SOURCE_URL = new URL('./run-thread.ts', import.meta.url);

/** Builds (or finds) the thread bundle in `cacheDir` and returns its path. Rejects with `BundleError`. */
export async function buildThreadBundle(cacheDir: string): Promise<string> {
  const source = await bundleSource(fileURLToPath(THREAD_SOURCE_URL));
  const filePath = path.join(cacheDir, `run-thread-${contentHash(source)}.js`);
  if (!(await fileExists(filePath))) await writeBundle(cacheDir, filePath, source);
  return filePath;
}
