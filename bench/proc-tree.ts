/**
 * CPU time and resident memory of a process and all its descendants, read
 * from /proc (Linux). Benchmarks use it to charge a scenario with everything
 * the server, the worker and the worker's engine children spent.
 */
import { readdirSync, readFileSync } from 'node:fs';

const CLOCK_TICKS_PER_SECOND = 100;
const PAGE_BYTES = 4096;

interface ProcStat {
  pid: number;
  ppid: number;
  cpuTicks: number;
  rssPages: number;
}

function readStat(pid: number): ProcStat | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name is in parentheses and may hold spaces: split after the last ')'.
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return {
      pid,
      ppid: Number(fields[1]),
      cpuTicks: Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14]),
      rssPages: Number(fields[21]),
    };
  } catch {
    return undefined;
  }
}

function allStats(): ProcStat[] {
  const stats: ProcStat[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = readStat(Number(entry));
    if (stat) stats.push(stat);
  }
  return stats;
}

/** The pids of `roots` and every descendant. */
function treeOf(roots: readonly number[], stats: readonly ProcStat[]): ProcStat[] {
  const byParent = new Map<number, ProcStat[]>();
  for (const stat of stats) byParent.set(stat.ppid, [...(byParent.get(stat.ppid) ?? []), stat]);
  const result: ProcStat[] = [];
  const queue = stats.filter((stat) => roots.includes(stat.pid));
  while (queue.length > 0) {
    const next = queue.shift() as ProcStat;
    result.push(next);
    queue.push(...(byParent.get(next.pid) ?? []));
  }
  return result;
}

/**
 * CPU seconds used so far by the trees under `roots`. Includes the time of
 * children that have been reaped (cutime/cstime), so replaced engine children
 * still count.
 */
export function treeCpuSeconds(roots: readonly number[]): number {
  return treeOf(roots, allStats()).reduce((sum, stat) => sum + stat.cpuTicks, 0) / CLOCK_TICKS_PER_SECOND;
}

/** The pids of the trees under `roots`. */
export function treePids(roots: readonly number[]): number[] {
  return treeOf(roots, allStats()).map((stat) => stat.pid);
}

/** Resident memory of the trees under `roots`, in MB. */
export function treeRssMb(roots: readonly number[]): number {
  return (treeOf(roots, allStats()).reduce((sum, stat) => sum + stat.rssPages, 0) * PAGE_BYTES) / (1024 * 1024);
}

/**
 * Proportional set size of the trees under `roots`, in MB: each shared page
 * is split among the processes sharing it, so children forked from one binary
 * are not charged twice for its code (`/proc/PID/smaps_rollup`).
 */
export function treePssMb(roots: readonly number[]): number {
  let kb = 0;
  for (const stat of treeOf(roots, allStats())) {
    try {
      kb += Number(/^Pss:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${stat.pid}/smaps_rollup`, 'utf8'))?.[1] ?? 0);
    } catch {
      // gone meanwhile
    }
  }
  return kb / 1024;
}
