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

async function loadBundle(bundlePath: string): Promise<Loaded> {
  const href = pathToFileURL(bundlePath).href;
  const source = readFileSync(bundlePath);
  const module = new vm.SourceTextModule(source.toString('utf8'), {
    identifier: href,
    cachedData: readCodeCache(bundlePath, source),
    initializeImportMeta(meta) {
      meta.url = href;
      meta.filename = bundlePath;
      meta.dirname = path.dirname(bundlePath);
    },
    // Node accepts a namespace object as well as a module (its docs say so; @types/node knows only modules).
    importModuleDynamically: importModuleDynamically as unknown as vm.DynamicModuleLoader<vm.SourceTextModule>,
  });
  // A bundle of another format (static imports): Node's loader can link it, this cannot.
  if (module.dependencySpecifiers.length > 0) return (await import(href)) as Record<string, unknown>;
  await module.link(() => Promise.reject(new Error('a bundle has no static imports')));
  await module.evaluate();
  return module;
}

/** The bundle file a specifier names, if it is an absolute `.js` path or file URL with a code cache beside it. */
function cachedBundle(specifier: string, referrer: string): string | undefined {
  let file: string;
  if (specifier.startsWith('/')) file = specifier;
  else if (specifier.startsWith('file:') || specifier.startsWith('./') || specifier.startsWith('../')) {
    const url = new URL(specifier, referrer);
    if (url.search !== '' || url.hash !== '') return undefined;
    file = fileURLToPath(url);
  } else return undefined;
  return file.endsWith('.js') && existsSync(codeCachePath(file)) ? file : undefined;
}

function importModuleDynamically(specifier: string, referrer: vm.Module | vm.Script | vm.Context): Promise<Loaded> {
  const from = referrer instanceof vm.Module ? referrer.identifier : pathToFileURL(LANES_THREAD_BUNDLE).href;
  const bundle = cachedBundle(specifier, from);
  if (bundle === undefined) {
    const relative = specifier.startsWith('./') || specifier.startsWith('../');
    return import(relative ? new URL(specifier, from).href : specifier) as Promise<Record<string, unknown>>;
  }
  let module = loaded.get(bundle);
  if (!module) {
    module = loadBundle(bundle);
    loaded.set(bundle, module);
    // A failed load is not kept: the run that needs the bundle tries again and reports its own error.
    module.catch(() => loaded.delete(bundle));
  }
  return module;
}

await loadBundle(LANES_THREAD_BUNDLE);
