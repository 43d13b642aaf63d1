/**
 * V8 code caches for the bundles a run thread loads (docs/engine.md, "Code
 * cache"). A fresh thread per run compiles the thread bundle and its adaptor
 * again every time; V8 can instead deserialise the top-level code it compiled
 * once, which saves most of the compile (about 30 ms of CPU per thread with
 * @openfn/language-common).
 *
 * A code cache is code: V8 runs its bytecode without checking it against the
 * source beyond the source's length. So only the trusted worker process
 * writes caches (through a helper process of its own, code-cache-writer.ts,
 * since compiling an ES module for V8's cache needs `--experimental-vm-modules`),
 * before any child loads them; children, which run job code, may not write
 * any file (child-permissions.ts), and Node's own compile cache refuses to
 * start without write permission, so no child ever writes a cache another
 * thread loads. A reader takes a cache only when the header's SHA-256 of the
 * source matches the source it is about to compile and the SHA-256 of the
 * cache data matches the data: a stale, truncated or corrupt cache is
 * ignored and the bundle compiles as if there were none. A whole cache V8
 * itself rejects (made under other V8 flags) is ignored the same way
 * (thread-boot.ts).
 *
 * File layout: `LNC1` (4 bytes), SHA-256 of the source (32), SHA-256 of the
 * V8 data (32), the V8 data.
 */
import { createHash } from 'node:crypto';

/**
 * A bundle's cache sits beside it under this suffix, which names the V8 that
 * made it: V8 refuses another version's cache, so after an upgrade of Node
 * the new V8 writes its own instead of every thread compiling without one.
 */
export const CODE_CACHE_SUFFIX = `.v8-${process.versions.v8}.v8cache`;

const MAGIC = Buffer.from('LNC1');
const HASH_BYTES = 32;
const HEADER_BYTES = MAGIC.length + 2 * HASH_BYTES;

/** Where the cache of the bundle at `bundlePath` is written. */
export function codeCachePath(bundlePath: string): string {
  return bundlePath + CODE_CACHE_SUFFIX;
}

function sha256(data: Buffer): Buffer {
  return createHash('sha256').update(data).digest();
}

/** The cache file's bytes for V8's `data`, made from `source` (the bundle file's bytes). */
export function encodeCodeCache(source: Buffer, data: Buffer): Buffer {
  return Buffer.concat([MAGIC, sha256(source), sha256(data), data]);
}

/**
 * V8's data from the cache file `file`, if it was made from exactly `source`
 * and is whole; undefined otherwise (no file, another source, truncated,
 * corrupt, or another format).
 */
export function decodeCodeCache(file: Buffer, source: Buffer): Buffer | undefined {
  if (file.length <= HEADER_BYTES || !file.subarray(0, MAGIC.length).equals(MAGIC)) return undefined;
  const sourceHash = file.subarray(MAGIC.length, MAGIC.length + HASH_BYTES);
  const dataHash = file.subarray(MAGIC.length + HASH_BYTES, HEADER_BYTES);
  const data = file.subarray(HEADER_BYTES);
  if (!sha256(source).equals(sourceHash) || !sha256(data).equals(dataHash)) return undefined;
  return data;
}
