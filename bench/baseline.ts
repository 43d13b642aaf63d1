/**
 * `BENCH_BASELINE=DIR`: another checkout of Lanes (with its node_modules),
 * whose worker the idle and saturation scenarios also run, interleaved with
 * this one's, against this checkout's server. Figures of two versions are
 * then measured side by side in one run, under the same machine load, which
 * is the only fair comparison on a shared machine. The directory needs its
 * own node_modules (a real directory: the engine's permission model reads
 * through real paths only), e.g.
 *
 *   git archive OLD | tar -x -C /tmp/base && echo OLD > /tmp/base/COMMIT
 *   cp -al node_modules /tmp/base/node_modules
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

export interface Baseline {
  /** The checkout's `bin/lanes.js`. */
  bin: string;
  /**
   * With `BENCH_BASELINE_SERVER=1` the idle scenario's baseline trials run
   * that checkout's server too, not only its worker: for a change on the
   * server's side of the idle path.
   */
  server: boolean;
  /** Its short commit, for the tables. */
  label: string;
}

export function resolveBaseline(dir: string | undefined, withServer = false): Baseline | undefined {
  if (dir === undefined || dir === '') return undefined;
  const bin = join(resolve(dir), 'bin', 'lanes.js');
  if (!existsSync(bin)) throw new Error(`BENCH_BASELINE: no bin/lanes.js in ${dir}`);
  // A `COMMIT` file names an exported tree (`git archive`); a checkout names itself.
  const stamp = join(resolve(dir), 'COMMIT');
  if (existsSync(stamp)) return { bin, server: withServer, label: readFileSync(stamp, 'utf8').trim() };
  try {
    return { bin, server: withServer, label: execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim() };
  } catch {
    return { bin, server: withServer, label: 'baseline' };
  }
}
