/**
 * The memory part of a claim (protocol `memory_claims`, docs/memory.md), the
 * same for every store: which runs' need is counted, and the fairness rule
 * that picks among the candidates the query returned in claim order.
 */
import { RUN_MEMORY_OPTION } from '../../protocol/index.ts';
import { num } from './store-rows.ts';
import type { Row } from './store-rows.ts';

/** The plan option that holds a run's memory need, as a JSON path segment. */
export const RUN_MEMORY_PATH = `options.${RUN_MEMORY_OPTION}`;

/**
 * The fairness rule of memory claims: runs are taken in claim order while
 * they fit in what the lane has free; the first that does not fit ends the
 * claim, even if smaller runs wait behind it. A big run at the head of a lane's
 * order is thus never starved by a stream of small ones: the lane takes
 * nothing more until its runs finish and free enough memory for it. Runs that
 * could never fit the lane (need above `lane_memory_mb`) must already be left
 * out by the query. Each row carries its need as `memory_mb`.
 */
export function fitMemory(rows: readonly Row[], freeMb: number): Row[] {
  const taken: Row[] = [];
  let free = freeMb;
  for (const row of rows) {
    const need = num(row, 'memory_mb');
    if (need > free) break;
    free -= need;
    taken.push(row);
  }
  return taken;
}
