/**
 * Node's permission model for pooled children: the boundary that job code
 * cannot talk its way out of. Job code runs in a `vm` context without
 * `process`, but `vm` is not a security mechanism: every object that crosses
 * into the context (the state, a callback) leads back to the thread's own
 * `Function` and from there to `process`. So the child process itself is
 * started with `--permission`: no child processes, no native addons, no
 * inspector, no WASI, no file writes, and file reads only from the code the
 * child must load (Lanes' `src/`, the `node_modules` holding its
 * dependencies, the adaptor repo and local adaptor directories).
 * `/proc/<worker pid>/environ`, the worker's `.env` or database, and every
 * other file are out of reach. Worker threads must be allowed (each run is
 * one); `thread-lockdown.ts` closes the way around the model that this opens.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Directories and files a child must read to boot and run plans, besides the adaptor repo. */
export function codeReadPaths(): string[] {
  const srcDir = fileURLToPath(new URL('../', import.meta.url));
  const packageJson = fileURLToPath(new URL('../../package.json', import.meta.url));
  const paths = [srcDir, packageJson];
  const runtimeEntry = fileURLToPath(import.meta.resolve('@openfn/runtime'));
  const marker = `${path.sep}node_modules${path.sep}`;
  const at = runtimeEntry.lastIndexOf(marker);
  if (at >= 0) paths.push(runtimeEntry.slice(0, at + marker.length));
  return paths;
}

/** The `--permission` flags for a child that may read `readPaths` (directories end with a separator or are matched as prefixes). */
export function permissionFlags(readPaths: readonly string[]): string[] {
  const flags = ['--permission', '--allow-worker', '--disable-warning=SecurityWarning'];
  for (const p of new Set(readPaths.map((r) => path.resolve(r)))) flags.push(`--allow-fs-read=${p}`);
  return flags;
}
