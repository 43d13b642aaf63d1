/**
 * Idle latency: trivial runs one after another on an idle worker. Each is
 * submitted with `?wait` (through the product's own API client, timed from
 * just before the call), and the next goes `IDLE_GAP_MS` after the last
 * finished: after every run the engine spends 0.1-0.4 s of
 * CPU booting the fresh thread and adaptor instance of the next one, and a
 * run submitted during that boot measures the machine's throughput, not the
 * latency of an idle worker (the throughput scenario measures that).
 * Also yields the CPU cost of one isolated run, which bounds throughput.
 */
import { startCluster } from '../harness.ts';
import { treeCpuSeconds } from '../proc-tree.ts';
import { ADAPTOR, trivialPlan } from '../plans.ts';
import { completeLatencyMs, createdToFirstLineMs, failures, firstLineLatencyMs, startLatencyMs, submitTimed, waitAll } from '../run-timing.ts';
import type { TimedRun } from '../run-timing.ts';
import { percentile } from '../stats.ts';

/** Pause before each run, so the worker is idle again when it arrives. */
export const IDLE_GAP_MS = 600;

export interface IdleTrial {
  runs: number;
  startMs: { p50: number; p99: number };
  /** submit → the first line of job code, stamped by the job: the headline. */
  firstLineMs: { p50: number; p99: number };
  /** The server's created_at → the first line (`createdToFirstLineMs`). */
  createdFirstLineMs: { p50: number; p99: number };
  completeMs: { p50: number; p99: number };
  /** CPU seconds of the server + worker trees per run, runs one at a time, less what the idle tree burns anyway. */
  cpuSecondsPerRun: number;
  failed: string[];
}

export async function idleTrial(options: { repoDir: string; quick: boolean; bin?: string; serverBin?: string }): Promise<IdleTrial> {
  const count = options.quick ? 10 : 50;
  const cluster = await startCluster({ repoDir: options.repoDir, ...(options.serverBin === undefined ? {} : { serverBin: options.serverBin }) });
  try {
    const worker = await cluster.startWorker({ workloops: 'fast_lane:1 manual>*:4', extraArgs: ['--preload-adaptors', ADAPTOR], ...(options.bin === undefined ? {} : { bin: options.bin }) });
    const warm = [await submitTimed(cluster.client, 'manual', trivialPlan())];
    await waitAll(cluster.client, warm, 300_000);
    await new Promise((resolve) => setTimeout(resolve, 500));

    const roots = [cluster.server.pid, worker.pid];
    // What the idle tree burns on its own (timers, heartbeats, memory sampling), to subtract below.
    const idleFrom = treeCpuSeconds(roots);
    const idleStart = performance.now();
    await new Promise((resolve) => setTimeout(resolve, options.quick ? 1000 : 2000));
    const idleCpuPerMs = (treeCpuSeconds(roots) - idleFrom) / (performance.now() - idleStart);
    const cpuBefore = treeCpuSeconds(roots);
    const runsStart = performance.now();
    const runs: TimedRun[] = [];
    for (let i = 0; i < count; i += 1) {
      await new Promise((resolve) => setTimeout(resolve, IDLE_GAP_MS));
      const submittedAtMs = Date.now();
      const run = await cluster.client.submitAndWait({ queue: 'manual', plan: trivialPlan(), input: { data: {} } }, 60);
      runs.push({ id: run.id, submittedAtMs, run });
    }
    await new Promise((resolve) => setTimeout(resolve, IDLE_GAP_MS));
    const busyCpu = treeCpuSeconds(roots) - cpuBefore - idleCpuPerMs * (performance.now() - runsStart);
    const cpuSecondsPerRun = Math.max(0, busyCpu) / count;
    const starts = runs.map(startLatencyMs);
    const completes = runs.map(completeLatencyMs);
    const firstLines = runs.map(firstLineLatencyMs);
    const createdFirstLines = runs.map(createdToFirstLineMs);
    return {
      runs: count,
      startMs: { p50: percentile(starts, 50), p99: percentile(starts, 99) },
      firstLineMs: { p50: percentile(firstLines, 50), p99: percentile(firstLines, 99) },
      createdFirstLineMs: { p50: percentile(createdFirstLines, 50), p99: percentile(createdFirstLines, 99) },
      completeMs: { p50: percentile(completes, 50), p99: percentile(completes, 99) },
      cpuSecondsPerRun,
      failed: failures(runs),
    };
  } finally {
    await cluster.close();
  }
}
