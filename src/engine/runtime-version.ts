import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The installed `@openfn/runtime`'s version, reported with each run; `unknown` when it cannot be read. */
export async function readRuntimeVersion(): Promise<string> {
  try {
    const entry = fileURLToPath(import.meta.resolve('@openfn/runtime'));
    const pkg = JSON.parse(await readFile(path.join(path.dirname(entry), '..', 'package.json'), 'utf8')) as { version?: string };
    return pkg.version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}
