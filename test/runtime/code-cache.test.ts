/**
 * V8 code caches for bundles (runtime/code-cache.ts, code-cache-writer.ts,
 * engine/thread-boot.ts): written by the worker's helper process, taken by a
 * run thread started as pooled children start them (their flags, their
 * permission model), ignored when stale or damaged, and never writable by a
 * child.
 */
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import test from 'ava';
import { bundleSource, writeBundle } from '../../src/runtime/bundle.ts';
import { codeCachePath, decodeCodeCache, encodeCodeCache } from '../../src/runtime/code-cache.ts';
import { CodeCacheError, writeCodeCaches } from '../../src/runtime/code-cache-writer.ts';
import { permissionFlags } from '../../src/engine/child-permissions.ts';
import { tempDir } from '../engine/helpers.ts';

const run = promisify(execFile);

test('a cache is taken only for the exact source it was made from, and only whole', (t) => {
  const source = Buffer.from('export const x = 1;');
  const data = Buffer.from('pretend V8 data');
  const file = encodeCodeCache(source, data);
  t.deepEqual(decodeCodeCache(file, source), data);
  t.is(decodeCodeCache(file, Buffer.from('export const x = 2;')), undefined, 'another source of the same length');
  t.is(decodeCodeCache(file.subarray(0, file.length - 1), source), undefined, 'truncated');
  const flipped = Buffer.from(file);
  flipped[flipped.length - 1] = (flipped[flipped.length - 1] ?? 0) ^ 1;
  t.is(decodeCodeCache(flipped, source), undefined, 'corrupt data');
  const otherFormat = Buffer.from(file);
  otherFormat[3] = 0x32;
  t.is(decodeCodeCache(otherFormat, source), undefined, 'another format');
  t.is(decodeCodeCache(Buffer.alloc(0), source), undefined, 'empty');
});

/**
 * Two bundles of the same length that post a different number. V8 checks a
 * cache against the source's length only, so a cache of one, taken for the
 * other, runs the first one's code: how these tests see whether a thread
 * took a cache at all.
 */
const bundleText = (n: number): string =>
  `process.getBuiltinModule('node:worker_threads').parentPort.postMessage(${n});\nexport const n = ${n};\n`;

/** Builds a thread entry (thread-boot.ts) for the bundle at `bundlePath`, with thread-bundle.ts's recipe. */
async function bootEntry(dir: string, bundlePath: string): Promise<string> {
  const entry = path.join(dir, 'boot.js');
  const source = await bundleSource(path.resolve('src/engine/thread-boot.ts'), { define: { LANES_THREAD_BUNDLE: JSON.stringify(bundlePath) } });
  await writeBundle(dir, entry, source);
  return entry;
}

/** Starts the thread from `entry` in a process started with a pooled child's flags and permissions; what its bundle posted. */
async function threadSays(dir: string, entry: string): Promise<number> {
  const script = `const { Worker } = require('node:worker_threads'); new Worker(${JSON.stringify(entry)}).once('message', (n) => { console.log(n); process.exit(0); });`;
  const flags = ['--max-old-space-size=256', '--experimental-vm-modules', '--disable-warning=ExperimentalWarning', ...permissionFlags([dir])];
  const { stdout } = await run(process.execPath, [...flags, '-e', script], { timeout: 60_000, env: {} });
  return Number(stdout.trim());
}

test('a run thread started as children start it takes the cache the worker wrote, and ignores a stale one', async (t) => {
  const dir = await tempDir(t, 'lanes-code-cache-');
  const bundle = path.join(dir, 'bundle.js');
  await writeBundle(dir, bundle, bundleText(1));
  await writeCodeCaches([bundle]);
  const entry = await bootEntry(dir, bundle);
  t.is(await threadSays(dir, entry), 1);

  // The bundle changes under its cache (same length): the cache's source hash no longer matches, and it is ignored.
  const one = await readFile(codeCachePath(bundle));
  await writeFile(bundle, bundleText(2));
  t.is(await threadSays(dir, entry), 2);

  // A cache whose header claims the new source but holds the old code: taken, which proves the thread uses
  // V8's data under the children's flags (the header check is all that stands between a stale cache and V8).
  const v8Data = decodeCodeCache(one, Buffer.from(bundleText(1)));
  if (!v8Data) return t.fail('the written cache does not decode');
  await writeFile(codeCachePath(bundle), encodeCodeCache(Buffer.from(bundleText(2)), v8Data));
  t.is(await threadSays(dir, entry), 1);

  // Garbage where the cache should be: ignored, the bundle compiles.
  await writeFile(codeCachePath(bundle), Buffer.from('LNC1 not a cache'));
  t.is(await threadSays(dir, entry), 2);
});

test('a bundle that cannot be cached is a CodeCacheError naming it', async (t) => {
  const dir = await tempDir(t, 'lanes-code-cache-');
  const broken = path.join(dir, 'broken.js');
  await writeFile(broken, 'export const = ;');
  const error = await t.throwsAsync(writeCodeCaches([broken]), { instanceOf: CodeCacheError });
  t.true(error?.message.includes(broken), error?.message);
});

test('a child cannot write a code cache: neither a file in the bundles dir nor through Node’s own compile cache', async (t) => {
  const dir = await tempDir(t, 'lanes-code-cache-');
  const bundle = path.join(dir, 'bundle.js');
  await writeBundle(dir, bundle, bundleText(1));
  await writeCodeCaches([bundle]);
  const before = await readFile(codeCachePath(bundle));
  const script = [
    "const fs = require('node:fs'); const m = require('node:module');",
    `let write; try { fs.writeFileSync(${JSON.stringify(codeCachePath(bundle))}, 'poison'); write = 'written'; } catch (e) { write = e.code; }`,
    `const compileCache = m.enableCompileCache(${JSON.stringify(path.join(dir, 'node-cache'))});`,
    'console.log(JSON.stringify({ write, compileCache: compileCache.status === m.constants.compileCacheStatus.FAILED ? "refused" : compileCache.status }));',
  ].join('\n');
  const flags = ['--experimental-vm-modules', ...permissionFlags([dir])];
  const { stdout } = await run(process.execPath, [...flags, '-e', script], { timeout: 60_000, env: {} });
  t.deepEqual(JSON.parse(stdout), { write: 'ERR_ACCESS_DENIED', compileCache: 'refused' });
  t.deepEqual(await readFile(codeCachePath(bundle)), before);
});
