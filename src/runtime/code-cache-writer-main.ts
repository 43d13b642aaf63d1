/**
 * Entry of the worker's helper process that writes V8 code caches
 * (code-cache.ts): `node --experimental-vm-modules code-cache-writer-main.ts
 * BUNDLE...`. It compiles each bundle as an ES module, as a run thread's
 * loader will (thread-boot.ts), and writes the cache beside it, to a
 * temporary file renamed into place so a reader never sees half a cache. It
 * runs no bundle code. Exits 1 with one line on stderr when a bundle cannot
 * be cached.
 */
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import vm from 'node:vm';
import { codeCachePath, encodeCodeCache } from './code-cache.ts';

function writeCache(bundlePath: string): void {
  const source = readFileSync(bundlePath);
  // createCachedData is Node's (since 13.7), missing from @types/node's SourceTextModule.
  const module = new vm.SourceTextModule(source.toString('utf8'), { identifier: pathToFileURL(bundlePath).href }) as vm.SourceTextModule & { createCachedData(): Buffer };
  const target = codeCachePath(bundlePath);
  const temporary = `${target}.${process.pid}.tmp`;
  writeFileSync(temporary, encodeCodeCache(source, module.createCachedData()));
  renameSync(temporary, target);
}

for (const bundlePath of process.argv.slice(2)) {
  try {
    writeCache(bundlePath);
  } catch (error) {
    process.stderr.write(`cannot write the code cache of ${bundlePath}: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  }
}
