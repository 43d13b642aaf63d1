/**
 * Entry of a run's worker thread when the engine runs bundled code: loads
 * the run-thread bundle, and every adaptor bundle it imports, as
 * `vm.SourceTextModule`s with their V8 code cache (runtime/code-cache.ts),
 * so a fresh thread deserialises what another compiled instead of compiling
 * it again (docs/engine.md, "Code cache").
 *
 * Bundled only (thread-bundle.ts), with the thread bundle's path written in
 * as `LANES_THREAD_BUNDLE`. Bundles have no static imports (their builtins
 * come through `process.getBuiltinModule`, bundle-plugins.ts), so linking is
 * empty. A bundle without a valid cache compiles as if loaded by `import`;
 * anything else a bundle imports (a file that is not a cached bundle, a
 * package) goes to Node's own loader. A cached bundle is loaded once per
 * thread and shared by every importer, as `import` would.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import vm from 'node:vm';
import { codeCachePath, decodeCodeCache } from '../runtime/code-cache.ts';

declare const LANES_THREAD_BUNDLE: string;

/** A module, or the namespace of one Node's loader imported: `importModuleDynamically` may return either. */
type Loaded = vm.Module | Record<string, unknown>;

const loaded = new Map<string, Promise<Loaded>>();

function readCodeCache(bundlePath: string, source: Buffer): Buffer | undefined {
  try {
    return decodeCodeCache(readFileSync(codeCachePath(bundlePath)), source);
  } catch {
    return undefined;
  }
}

/** Whether `error` is Node's refusal of a code cache V8 rejected (another V8, other V8 flags). */
function isRejectedCache(error: unknown): boolean {
  return error instanceof Error && (error as { code?: unknown }).code === 'ERR_VM_MODULE_CACHED_DATA_REJECTED';
}

async function loadBundle(bundlePath: string): Promise<Loaded> {
  const href = pathToFileURL(bundlePath).href;
  const source = readFileSync(bundlePath);
  const compile = (cachedData: Buffer | undefined): vm.SourceTextModule =>
    new vm.SourceTextModule(source.toString('utf8'), {
      identifier: href,
      cachedData,
      initializeImportMeta(meta) {
        meta.url = href;
        meta.filename = bundlePath;
        meta.dirname = path.dirname(bundlePath);
      },
      // Node accepts a namespace object as well as a module (its docs say so; @types/node knows only modules).
      importModuleDynamically: importModuleDynamically as unknown as vm.DynamicModuleLoader<vm.SourceTextModule>,
    });
  let module: vm.SourceTextModule;
  try {
    module = compile(readCodeCache(bundlePath, source));
  } catch (error) {
    // Node throws where V8 only declines the cache: compile as if there were none.
    if (!isRejectedCache(error)) throw error;
    module = compile(undefined);
  }
  // A bundle of another format (static imports): Node's loader can link it, this cannot.
  if (module.dependencySpecifiers.length > 0) return (await import(href)) as Record<string, unknown>;
  await module.link(() => Promise.reject(new Error('a bundle has no static imports')));
  await module.evaluate();
  return module;
}

/** The file an absolute path, a file URL or a relative specifier names (without query or hash), else undefined. */
function fileOf(specifier: string, referrer: string): string | undefined {
  if (specifier.startsWith('/')) return specifier;
  if (!specifier.startsWith('file:') && !specifier.startsWith('./') && !specifier.startsWith('../')) return undefined;
  const url = new URL(specifier, referrer);
  return url.search === '' && url.hash === '' ? fileURLToPath(url) : undefined;
}

function importModuleDynamically(specifier: string, referrer: vm.Module | vm.Script | vm.Context): Promise<Loaded> {
  const from = referrer instanceof vm.Module ? referrer.identifier : pathToFileURL(LANES_THREAD_BUNDLE).href;
  const relative = specifier.startsWith('./') || specifier.startsWith('../');
  const file = fileOf(specifier, from);
  // One module per file and thread, whichever way it was first loaded: a code cache written in the
  // background after a thread imported a bundle through Node's loader must not make a second instance.
  let module = file === undefined ? undefined : loaded.get(file);
  if (module) return module;
  const cached = file !== undefined && file.endsWith('.js') && existsSync(codeCachePath(file));
  module = cached ? loadBundle(file) : (import(relative ? new URL(specifier, from).href : specifier) as Promise<Record<string, unknown>>);
  if (file === undefined) return module;
  loaded.set(file, module);
  // A failed load is not kept: the run that needs the bundle tries again and reports its own error.
  module.catch(() => loaded.delete(file));
  return module;
}

await loadBundle(LANES_THREAD_BUNDLE);
