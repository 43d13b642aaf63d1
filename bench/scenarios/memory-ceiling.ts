/**
 * The memory ceiling under a mix of runs (docs/memory.md): runs declaring
 * 64 MB and 1 GB that really allocate about 80 % of it, plus a trickle of
 * fast-lane runs. Side by side: a worker with `--max-memory 2048` and memory
 * per lane, and the same slots without a ceiling (fixed capacity, every run
 * allowed 1 GB). Reports the peak resident memory of the worker's tree
 * sampled every 50 ms, the runs killed inside their own limit, and the
 * fast-lane submit → first line of job code (stamped by the job itself).
 */
import { startCluster } from '../harness.ts';
import { ADAPTOR } from '../plans.ts';
import { treeRssMb } from '../proc-tree.ts';
import { failures, submitTimed, waitAll } from '../run-timing.ts';
import type { TimedRun } from '../run-timing.ts';
import { percentile } from '../stats.ts';

export const CEILING_MB = 2048;

export const MEMORY_CEILING_CONFIGS = {
  ceiling: { label: `--max-memory ${CEILING_MB}, fast_lane:1@64 manual>*:3`, workloops: 'fast_lane:1@64 manual>*:3', args: ['--max-memory', String(CEILING_MB)] },
  fixed: { label: 'no ceiling, fast_lane:1 manual>*:3, --run-memory 1024', workloops: 'fast_lane:1 manual>*:3', args: ['--run-memory', '1024'] },
} as const;
export type MemoryCeilingConfig = keyof typeof MEMORY_CEILING_CONFIGS;

export interface MemoryCeilingTrial {
  config: string;
  peakTreeMb: number;
  /** Runs that ended OOMError although they stayed inside what they declared. */
  killedInsideLimit: number;
  fastFirstLineMs: { p50: number; p99: number };
  runs: number;
  wallSeconds: number;
  failed: string[];
}

/** A run that declares `declaredMb`, holds 80 % of it in Buffers for `holdMs`, then returns. */
function allocatingPlan(declaredMb: number, holdMs: number): Record<string, unknown> {
  const mb = Math.round(declaredMb * 0.8);
  const body = `fn(async (state) => { const held = []; for (let i = 0; i < ${mb}; i++) held.push(Buffer.alloc(1024 * 1024, 1)); await new Promise((resolve) => setTimeout(resolve, ${holdMs})); return { held: held.length }; });`;
  return {
    triggers: [{ id: 'trigger', type: 'webhook' }],
    jobs: [{ id: 'job', name: 'job', adaptor: ADAPTOR, body }],
    edges: [{ id: 'edge', source_trigger_id: 'trigger', target_job_id: 'job', condition: 'always' }],
    options: { run_memory_limit_mb: declaredMb },
  };
}

/** A fast-lane run whose first line stamps the time, so latency ends where the user's code begins. */
function firstLinePlan(): Record<string, unknown> {
  return {
    triggers: [{ id: 'trigger', type: 'webhook' }],
    jobs: [{ id: 'job', name: 'job', adaptor: ADAPTOR, body: 'fn((state) => ({ firstLineAt: Date.now() }));' }],
    edges: [{ id: 'edge', source_trigger_id: 'trigger', target_job_id: 'job', condition: 'always' }],
    options: { run_memory_limit_mb: 64 },
  };
}

export async function memoryCeilingTrial(config: MemoryCeilingConfig, options: { repoDir: string; quick: boolean }): Promise<MemoryCeilingTrial> {
  const bigRuns = options.quick ? 4 : 8;
  const smallRuns = options.quick ? 8 : 16;
  const fastRuns = options.quick ? 8 : 20;
  const holdMs = options.quick ? 1500 : 3000;
  const cluster = await startCluster({ repoDir: options.repoDir });
  try {
    const { workloops, args } = MEMORY_CEILING_CONFIGS[config];
    const worker = await cluster.startWorker({ workloops, extraArgs: [...args, '--preload-adaptors', ADAPTOR] });
    const warm = [await submitTimed(cluster.client, 'fast_lane', firstLinePlan()), await submitTimed(cluster.client, 'manual', allocatingPlan(64, 0))];
    await waitAll(cluster.client, warm, 300_000);

    let peakTreeMb = treeRssMb([worker.pid]);
    const sampler = setInterval(() => {
      peakTreeMb = Math.max(peakTreeMb, treeRssMb([worker.pid]));
    }, 50);
    const started = Date.now();
    const mix: TimedRun[] = [];
    try {
      // Big and small interleaved: a 1 GB run every third, until there are `bigRuns` of them.
      let big = 0;
      for (let i = 0; i < bigRuns + smallRuns; i += 1) {
        const declared = i % 3 === 0 && big < bigRuns ? 1024 : 64;
        if (declared === 1024) big += 1;
        mix.push(await submitTimed(cluster.client, 'manual', allocatingPlan(declared, holdMs)));
      }
      const fast: TimedRun[] = [];
      for (let i = 0; i < fastRuns; i += 1) {
        fast.push(await submitTimed(cluster.client, 'fast_lane', firstLinePlan()));
        await new Promise((resolve) => setTimeout(resolve, 400));
      }
      await waitAll(cluster.client, [...mix, ...fast], 600_000);
      const wallSeconds = (Date.now() - started) / 1000;
      const firstLine: number[] = [];
      for (const run of fast) {
        const record = await cluster.client.getRun(run.id);
        const at = (record.final_state as { firstLineAt?: unknown } | null)?.firstLineAt;
        if (typeof at === 'number') firstLine.push(at - run.submittedAtMs);
      }
      const all = [...mix, ...fast];
      return {
        config: MEMORY_CEILING_CONFIGS[config].label,
        peakTreeMb,
        killedInsideLimit: all.filter((run) => run.run?.error_type === 'OOMError').length,
        fastFirstLineMs: { p50: percentile(firstLine, 50), p99: percentile(firstLine, 99) },
        runs: all.length,
        wallSeconds,
        failed: failures(all),
      };
    } finally {
      clearInterval(sampler);
    }
  } finally {
    await cluster.close();
  }
}
