/**
 * Memory of the worker's process tree (worker + engine children): idle,
 * with every slot busy, and after many runs, to show it does not grow; and
 * after a quiet spell (`idleSpellTrial`), with what a fast-lane run arriving
 * then waits for its first line of job code.
 */
import { startCluster } from '../harness.ts';
import { treePids, treePssMb, treeRssMb } from '../proc-tree.ts';
import { ADAPTOR, slowPlan, trivialPlan } from '../plans.ts';
import { createdToFirstLineMs, failures, firstLineLatencyMs, submitTimed, waitAll } from '../run-timing.ts';
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

/** How long the worker is left without runs before its tree is measured: the figure issue #16 sets a target for. */
export const IDLE_SPELL_MS = 60_000;

export interface IdleSpellTrial {
  workloops: string;
  /** The tree after `IDLE_SPELL_MS` without runs. */
  rssMb: number;
  pssMb: number;
  /** Processes in the tree then (the worker and its engine children). */
  processes: number;
  /** Fast-lane runs submitted one at a time after the spell, submit → first line of job code (stamped by the job). */
  firstLineMs: number[];
  /** The same runs, the server's created_at → first line (`createdToFirstLineMs`). */
  createdFirstLineMs: number[];
  failed: string[];
}

/**
 * The worker after a quiet spell: one run on each lane, then `IDLE_SPELL_MS`
 * without runs, then the tree's memory, then fast-lane runs one at a time
 * (each `gapMs` after the last ended), as a fast-lane run arriving at a quiet
 * worker meets it.
 */
export async function idleSpellTrial(options: { repoDir: string; quick: boolean; bin?: string; extraArgs?: string[] }): Promise<IdleSpellTrial> {
  const workloops = 'fast_lane:1 manual>*:4';
  const count = options.quick ? 5 : 10;
  const gapMs = 1000;
  const cluster = await startCluster({ repoDir: options.repoDir });
  try {
    const worker = await cluster.startWorker({ workloops, extraArgs: ['--preload-adaptors', ADAPTOR, ...(options.extraArgs ?? [])], ...(options.bin === undefined ? {} : { bin: options.bin }) });
    await waitAll(cluster.client, [await submitTimed(cluster.client, 'manual', trivialPlan()), await submitTimed(cluster.client, 'fast_lane', trivialPlan())], 300_000);
    await new Promise((resolve) => setTimeout(resolve, IDLE_SPELL_MS));
    const rssMb = treeRssMb([worker.pid]);
    const pssMb = treePssMb([worker.pid]);
    const processes = treePids([worker.pid]).length;
    const runs: TimedRun[] = [];
    for (let i = 0; i < count; i += 1) {
      if (i > 0) await new Promise((resolve) => setTimeout(resolve, gapMs));
      const submittedAtMs = Date.now();
      const run = await cluster.client.submitAndWait({ queue: 'fast_lane', plan: trivialPlan(), input: { data: {} } }, 60);
      runs.push({ id: run.id, submittedAtMs, run });
    }
    return { workloops, rssMb, pssMb, processes, firstLineMs: runs.map(firstLineLatencyMs), createdFirstLineMs: runs.map(createdToFirstLineMs), failed: failures(runs) };
  } finally {
    await cluster.close();
  }
}
