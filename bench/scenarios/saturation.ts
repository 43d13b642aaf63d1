/**
 * The headline: fast-lane runs while every general slot is busy. Ten long
 * runs go to `default`, then twenty trivial runs to `fast_lane` one every
 * 250 ms; measured for a worker with a reserved lane and for one without.
 */
import type { Cluster } from '../harness.ts';
import { startCluster } from '../harness.ts';
import { ADAPTOR, slowPlan, trivialPlan } from '../plans.ts';
import { completeLatencyMs, createdToFirstLineMs, failures, firstLineLatencyMs, readFinalStates, startLatencyMs, submitTimed, waitAll } from '../run-timing.ts';
import type { TimedRun } from '../run-timing.ts';
import { percentile } from '../stats.ts';

export const SATURATION_CONFIGS = ['fast_lane:1 manual>*:4', 'manual>*:5'] as const;

export interface SaturationTrial {
  workloops: string;
  startMs: { p50: number; p95: number; p99: number };
  /** submit → the first line of job code, stamped by the job: the headline. */
  firstLineMs: { p50: number; p95: number; p99: number };
  /** The server's created_at → the first line (`createdToFirstLineMs`). */
  createdFirstLineMs: { p50: number; p95: number; p99: number };
  completeMs: { p50: number; p95: number; p99: number };
  fastRuns: number;
  failed: string[];
}

export interface SaturationOptions {
  repoDir: string;
  quick: boolean;
  /** Another checkout's `bin/lanes.js` for the worker (`BENCH_BASELINE`). */
  bin?: string;
}

async function waitStarted(cluster: Cluster, count: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const listed = (await cluster.client.listRuns({ state: 'started', queue: 'default', limit: '100' })) as { runs: unknown[] };
    if (listed.runs.length >= count) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`fewer than ${count} long runs started within ${timeoutMs} ms`);
}

export async function saturationTrial(workloops: string, options: SaturationOptions): Promise<SaturationTrial> {
  const longRuns = options.quick ? 5 : 10;
  const longSeconds = options.quick ? 2 : 5;
  const fastRuns = options.quick ? 6 : 20;
  const cluster = await startCluster({ repoDir: options.repoDir });
  try {
    await cluster.startWorker({ workloops, extraArgs: ['--preload-adaptors', ADAPTOR], ...(options.bin === undefined ? {} : { bin: options.bin }) });
    // Warm up: the adaptor is installed and every lane has run once.
    const warm = await Promise.all([submitTimed(cluster.client, 'fast_lane', trivialPlan()), submitTimed(cluster.client, 'manual', trivialPlan())]);
    await waitAll(cluster.client, warm, 300_000);

    const slow: TimedRun[] = [];
    for (let i = 0; i < longRuns; i += 1) slow.push(await submitTimed(cluster.client, 'default', slowPlan(longSeconds)));
    const generalSlots = workloops.startsWith('fast_lane:1') ? 4 : 5;
    await waitStarted(cluster, Math.min(generalSlots, longRuns), 30_000);

    const fast: TimedRun[] = [];
    for (let i = 0; i < fastRuns; i += 1) {
      fast.push(await submitTimed(cluster.client, 'fast_lane', trivialPlan()));
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    await waitAll(cluster.client, [...fast, ...slow], 180_000);
    await readFinalStates(cluster.client, fast);
    const starts = fast.map(startLatencyMs);
    const firstLines = fast.map(firstLineLatencyMs);
    const createdFirstLines = fast.map(createdToFirstLineMs);
    const completes = fast.map(completeLatencyMs);
    return {
      workloops,
      startMs: { p50: percentile(starts, 50), p95: percentile(starts, 95), p99: percentile(starts, 99) },
      firstLineMs: { p50: percentile(firstLines, 50), p95: percentile(firstLines, 95), p99: percentile(firstLines, 99) },
      createdFirstLineMs: { p50: percentile(createdFirstLines, 50), p95: percentile(createdFirstLines, 95), p99: percentile(createdFirstLines, 99) },
      completeMs: { p50: percentile(completes, 50), p95: percentile(completes, 95), p99: percentile(completes, 99) },
      fastRuns,
      failed: failures([...fast, ...slow]),
    };
  } finally {
    await cluster.close();
  }
}
