/**
 * Memory of the worker's process tree (worker + engine children): idle,
 * with every slot busy, and after many runs, to show it does not grow.
 */
import { startCluster } from '../harness.ts';
import { treePssMb, treeRssMb } from '../proc-tree.ts';
import { ADAPTOR, slowPlan, trivialPlan } from '../plans.ts';
import { failures, submitTimed, waitAll } from '../run-timing.ts';
import type { TimedRun } from '../run-timing.ts';

export interface MemoryTrial {
  workloops: string;
  idleMb: number;
  /** PSS of the idle tree: shared pages split among the processes. */
  idlePssMb: number;
  busyMb: number;
  afterRuns: number;
  afterMb: number;
  failed: string[];
}

export async function memoryTrial(options: { repoDir: string; quick: boolean }): Promise<MemoryTrial> {
  const workloops = 'fast_lane:1 manual>*:4';
  const total = options.quick ? 50 : 1000;
  // Quick mode shortens the waits too: BENCH_QUICK=1 is meant to finish within a minute.
  const settleMs = options.quick ? 500 : 1000;
  const slowSeconds = options.quick ? 2 : 3;
  const cluster = await startCluster({ repoDir: options.repoDir });
  try {
    const worker = await cluster.startWorker({ workloops, extraArgs: ['--preload-adaptors', ADAPTOR] });
    await waitAll(cluster.client, [await submitTimed(cluster.client, 'manual', trivialPlan())], 300_000);
    await new Promise((resolve) => setTimeout(resolve, settleMs));
    const idleMb = treeRssMb([worker.pid]);
    const idlePssMb = treePssMb([worker.pid]);

    // Every slot busy: one slow run per slot, RSS sampled while they all run.
    const slow = [await submitTimed(cluster.client, 'fast_lane', slowPlan(slowSeconds))];
    for (let i = 0; i < 4; i += 1) slow.push(await submitTimed(cluster.client, 'manual', slowPlan(slowSeconds)));
    let busyMb = 0;
    const sampleUntil = Date.now() + (slowSeconds - 0.5) * 1000;
    while (Date.now() < sampleUntil) {
      busyMb = Math.max(busyMb, treeRssMb([worker.pid]));
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    await waitAll(cluster.client, slow, 60_000);

    const runs: TimedRun[] = [];
    for (let i = 0; i < total; i += 25) {
      const batch = Array.from({ length: Math.min(25, total - i) }, (_, j) => submitTimed(cluster.client, (i + j) % 5 === 0 ? 'fast_lane' : 'manual', trivialPlan()));
      const submitted = await Promise.all(batch);
      runs.push(...submitted);
      await waitAll(cluster.client, submitted, 300_000, 100);
    }
    await new Promise((resolve) => setTimeout(resolve, settleMs));
    const afterMb = treeRssMb([worker.pid]);
    return { workloops, idleMb, idlePssMb, busyMb, afterRuns: total, afterMb, failed: failures([...slow, ...runs]) };
  } finally {
    await cluster.close();
  }
}
