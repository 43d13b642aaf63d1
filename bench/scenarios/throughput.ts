/**
 * Throughput: many trivial runs submitted at once to a worker with one
 * wildcard lane, measured from the first submit to the last finish, with the
 * CPU seconds the whole server + worker tree spent per run.
 */
import { startCluster } from '../harness.ts';
import { treeCpuSeconds } from '../proc-tree.ts';
import { ADAPTOR, trivialPlan } from '../plans.ts';
import { failures, submitTimed, waitAll } from '../run-timing.ts';
import type { TimedRun } from '../run-timing.ts';

export interface ThroughputTrial {
  workloops: string;
  runs: number;
  runsPerSecond: number;
  cpuSecondsPerRun: number;
  failed: string[];
}

/** `bin`: another checkout's `bin/lanes.js` for the worker (`BENCH_BASELINE`). */
export async function throughputTrial(workloops: string, options: { repoDir: string; quick: boolean; bin?: string }): Promise<ThroughputTrial> {
  const count = options.quick ? 30 : 300;
  const cluster = await startCluster({ repoDir: options.repoDir });
  try {
    const worker = await cluster.startWorker({ workloops, extraArgs: ['--preload-adaptors', ADAPTOR], ...(options.bin === undefined ? {} : { bin: options.bin }) });
    await waitAll(cluster.client, [await submitTimed(cluster.client, 'default', trivialPlan())], 300_000);
    await new Promise((resolve) => setTimeout(resolve, 500));

    const roots = [cluster.server.pid, worker.pid];
    const cpuBefore = treeCpuSeconds(roots);
    const runs: TimedRun[] = [];
    // Submit in small concurrent batches: fast, without a thousand sockets at once.
    for (let i = 0; i < count; i += 20) {
      const batch = Array.from({ length: Math.min(20, count - i) }, () => submitTimed(cluster.client, 'default', trivialPlan()));
      runs.push(...(await Promise.all(batch)));
    }
    await waitAll(cluster.client, runs, 600_000, 250);
    const cpuSeconds = treeCpuSeconds(roots) - cpuBefore;
    const firstSubmit = Math.min(...runs.map((run) => run.submittedAtMs));
    const lastFinish = Math.max(...runs.map((run) => Date.parse(run.run?.finished_at ?? '')));
    return {
      workloops,
      runs: count,
      runsPerSecond: count / ((lastFinish - firstSubmit) / 1000),
      cpuSecondsPerRun: cpuSeconds / count,
      failed: failures(runs),
    };
  } finally {
    await cluster.close();
  }
}
