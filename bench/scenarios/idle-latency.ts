/**
 * Idle latency: trivial runs one after another on an idle worker, each
 * submitted with `?wait` so the next goes as soon as the last is done.
 * Also yields the CPU cost of one isolated run, which bounds throughput.
 */
import { startCluster } from '../harness.ts';
import { treeCpuSeconds } from '../proc-tree.ts';
import { ADAPTOR, trivialPlan } from '../plans.ts';
import { completeLatencyMs, failures, startLatencyMs, submitTimed, waitAll } from '../run-timing.ts';
import type { TimedRun } from '../run-timing.ts';
import type { RunRecord } from '../../src/client/lanes-api-client.ts';
import { percentile } from '../stats.ts';

export interface IdleTrial {
  runs: number;
  startMs: { p50: number; p99: number };
  completeMs: { p50: number; p99: number };
  /** CPU seconds of the server + worker trees per run, runs one at a time. */
  cpuSecondsPerRun: number;
  failed: string[];
}

export async function idleTrial(options: { repoDir: string; quick: boolean }): Promise<IdleTrial> {
  const count = options.quick ? 15 : 50;
  const cluster = await startCluster({ repoDir: options.repoDir });
  try {
    const worker = await cluster.startWorker({ workloops: 'fast_lane:1 manual>*:4', extraArgs: ['--preload-adaptors', ADAPTOR] });
    const warm = [await submitTimed(cluster.client, 'manual', trivialPlan())];
    await waitAll(cluster.client, warm, 300_000);
    await new Promise((resolve) => setTimeout(resolve, 500));

    const roots = [cluster.server.pid, worker.pid];
    const cpuBefore = treeCpuSeconds(roots);
    const runs: TimedRun[] = [];
    for (let i = 0; i < count; i += 1) {
      const submittedAtMs = Date.now();
      const response = await fetch(`${cluster.serverUrl}/api/runs?wait=60`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ queue: 'manual', plan: trivialPlan(), input: { data: {} } }),
      });
      const run = (await response.json()) as RunRecord;
      runs.push({ id: run.id, submittedAtMs, run });
    }
    const cpuSecondsPerRun = (treeCpuSeconds(roots) - cpuBefore) / count;
    const starts = runs.map(startLatencyMs);
    const completes = runs.map(completeLatencyMs);
    return {
      runs: count,
      startMs: { p50: percentile(starts, 50), p99: percentile(starts, 99) },
      completeMs: { p50: percentile(completes, 50), p99: percentile(completes, 99) },
      cpuSecondsPerRun,
      failed: failures(runs),
    };
  } finally {
    await cluster.close();
  }
}
