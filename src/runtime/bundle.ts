/**
 * One-file bundles of the code every run thread loads: Lanes' own thread code
 * (with @openfn/runtime) and each installed adaptor.
 *
 * A run thread is fresh for every run, so it loads this code once per run.
 * Loaded file by file, @openfn/language-common alone is some 300 modules and
 * about 0.3 s of CPU to resolve, read, compile and link; the same code as one
 * esbuild bundle costs about 0.08 s (docs/engine.md, "Bundled thread code").
 * Bundles are built by the worker process (never by a pooled child, which
 * may not write files), written atomically, and read by children under the
 * permission model like any other code.
 */
import { createHash } from 'node:crypto';
import { access, mkdir, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { build, stop } from 'esbuild';
import type { Plugin } from 'esbuild';
import { builtinsPlugin, stubPlugin } from './bundle-plugins.ts';
import type { ModuleStub } from './thread-stubs.ts';

/**
 * A bundle is an ES module; CommonJS dependencies inside it `require` Node's
 * builtins through this. Taken through `process.getBuiltinModule` rather than
 * `import`, so that a bundle can have no static import (bundle-plugins.ts).
 */
const REQUIRE_SHIM = "const require = process.getBuiltinModule('node:module').createRequire(import.meta.url);";

/** How every bundle this version writes begins (adaptor-repo.ts tells an older bundle by it). */
export const BUNDLE_FIRST_LINE = `${REQUIRE_SHIM}\n`;

export class BundleError extends Error {
  override name = 'BundleError';
}

/** Builds in flight: esbuild's service process is stopped when the last one ends. */
let building = 0;

export interface BundleOptions {
  /** Modules replaced by a few lines where a given package imports them (thread-stubs.ts). */
  stubs?: readonly ModuleStub[];
  /** Node builtins taken through `process.getBuiltinModule`: the bundle has no static import (bundle-plugins.ts). Default false. */
  builtinsAsExports?: boolean;
  /** Identifiers replaced by JSON values in the code (esbuild's `define`). */
  define?: Record<string, string>;
}

/** Bundles the ES module at `entryPath` with everything it imports (Node builtins excepted) into one ES module's source. */
export async function bundleSource(entryPath: string, options: BundleOptions = {}): Promise<string> {
  const plugins: Plugin[] = [];
  if (options.stubs && options.stubs.length > 0) plugins.push(stubPlugin(options.stubs));
  if (options.builtinsAsExports) plugins.push(builtinsPlugin());
  let result;
  building += 1;
  try {
    result = await build({
      entryPoints: [entryPath],
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node24',
      banner: { js: REQUIRE_SHIM },
      write: false,
      logLevel: 'silent',
      // Minified code is no faster to load here, and keeps names out of stack traces.
      minify: false,
      plugins,
      define: options.define ?? {},
    });
  } catch (error) {
    const detail = (error as { errors?: Array<{ text: string }> }).errors?.map((e) => e.text).join('; ');
    throw new BundleError(`could not bundle ${entryPath}: ${detail || (error instanceof Error ? error.message : String(error))}`, { cause: error });
  } finally {
    // esbuild keeps a service process alive between builds; in a worker that
    // bundles at start and then rarely (a new adaptor), it would idle in the
    // worker's tree for good (~12 MB resident, more after a large bundle). The
    // next build starts it again.
    building -= 1;
    if (building === 0) void stop();
  }
  const output = result.outputFiles?.[0];
  if (!output) throw new BundleError(`could not bundle ${entryPath}: esbuild wrote no output`);
  return output.text;
}

/**
 * Bundles are `.js` files, because @openfn/runtime's linker imports an
 * absolute path only when it ends in `.js`; this makes Node read them as ES
 * modules.
 */
const BUNDLES_PACKAGE_JSON = '{ "type": "module", "private": true }\n';

/**
 * Writes the bundle `source` to `filePath` (under `bundlesDir`) so a
 * concurrent reader sees the whole file or none of it.
 */
export async function writeBundle(bundlesDir: string, filePath: string, source: string): Promise<void> {
  await mkdir(path.dirname(filePath), { recursive: true });
  await writeAtomically(path.join(bundlesDir, 'package.json'), BUNDLES_PACKAGE_JSON);
  await writeAtomically(filePath, source);
}

async function writeAtomically(filePath: string, source: string): Promise<void> {
  const temporary = `${filePath}.${process.pid}.${Date.now()}.tmp`;
  await writeFile(temporary, source);
  await rename(temporary, filePath);
}

/** Whether a bundle (or any file) is already there. */
export async function fileExists(filePath: string): Promise<boolean> {
  try {
    await access(filePath);
    return true;
  } catch {
    return false;
  }
}

/** The first 16 hex digits of the SHA-256 of `source`: names a bundle by its content. */
export function contentHash(source: string): string {
  return createHash('sha256').update(source).digest('hex').slice(0, 16);
}
