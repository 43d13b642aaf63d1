/**
 * The code pooled children load, bundled into one ES module per entry, named
 * by its content so a worker never loads a bundle of other sources, and
 * reused across restarts:
 *
 * - the run thread's (run-thread.ts, the compiler, @openfn/runtime and the
 *   rest), loaded by every run's fresh thread, without the modules a run
 *   never uses (thread-stubs.ts), with a V8 code cache beside it
 *   (runtime/code-cache.ts) and a small entry that loads it through that
 *   cache (thread-boot.ts);
 * - the child process's own (child-main.ts and what it imports): loaded as
 *   plain JavaScript, a child never starts Node's TypeScript stripper, which
 *   would stay resident in every child (about 17 MB each, docs/memory.md).
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundleSource, contentHash, fileExists, writeBundle } from '../runtime/bundle.ts';
import type { BundleOptions } from '../runtime/bundle.ts';
import { THREAD_STUBS } from '../runtime/thread-stubs.ts';

/** The thread's entry in source form: what a child loads when there is no bundle. */
export const THREAD_SOURCE_URL = new URL('./run-thread.ts', import.meta.url);
/** The child process's entry in source form. */
export const CHILD_SOURCE_URL = new URL('./child-main.ts', import.meta.url);
const THREAD_BOOT_SOURCE_URL = new URL('./thread-boot.ts', import.meta.url);

async function buildBundle(cacheDir: string, source: URL, name: string, options: BundleOptions = {}): Promise<string> {
  const code = await bundleSource(fileURLToPath(source), options);
  const filePath = path.join(cacheDir, `${name}-${contentHash(code)}.js`);
  if (!(await fileExists(filePath))) await writeBundle(cacheDir, filePath, code);
  return filePath;
}

/** The thread bundle and the entry that loads it. */
export interface ThreadBundle {
  /** What a child starts each run's thread from (thread-boot.ts, bundled). */
  entry: string;
  /** The run-thread bundle the entry loads; its code cache is written by the adaptor repo (`writeCodeCache`). */
  bundle: string;
}

/** Builds (or finds) the thread bundle in `cacheDir` and its entry. Rejects with `BundleError`. */
export async function buildThreadBundle(cacheDir: string): Promise<ThreadBundle> {
  const bundle = await buildBundle(cacheDir, THREAD_SOURCE_URL, 'run-thread', { stubs: THREAD_STUBS, builtinsAsExports: true });
  const entry = await buildBundle(cacheDir, THREAD_BOOT_SOURCE_URL, 'run-thread-boot', { define: { LANES_THREAD_BUNDLE: JSON.stringify(bundle) } });
  return { entry, bundle };
}

/** Builds (or finds) the child process's bundle in `cacheDir` and returns its path. Rejects with `BundleError`. */
export function buildChildBundle(cacheDir: string): Promise<string> {
  return buildBundle(cacheDir, CHILD_SOURCE_URL, 'child-main');
}
