/**
 * Whether the npm registry serves a package version, asked synchronously: a
 * test file decides what to skip before it declares its tests, and AVA wants
 * every test declared synchronously (test/leak-check.ts declares its hook
 * first, so a top-level `await` before a `test()` would come too late).
 */
import { execFileSync } from 'node:child_process';

export function registryServes(name: string, version: string): boolean {
  try {
    const out = execFileSync('npm', ['view', `${name}@${version}`, 'version'], { timeout: 20_000, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    return out.trim() === version;
  } catch {
    return false;
  }
}
