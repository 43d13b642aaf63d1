/**
 * Engine benchmark: claim-to-start (execute() → first line of job code seen
 * by the parent) and start-to-complete of a trivial run, cold (no warm
 * spares: a thread is booted and the adaptor imported per run) and warm;
 * runs per second with every child busy; RSS of the whole tree idle and busy.
 *
 *   npx node bench/engine.ts [--runs N] [--pool N] [--adaptor fixture|language-common]
 *
 * `runEngineBench(opts)` returns the figures for bench/run.ts.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { pino } from 'pino';
import type { Logger } from 'pino';
import { Engine } from '../src/engine/index.ts';
import type { EngineOptions, RunRequest } from '../src/engine/index.ts';
import { processRssBytes } from '../src/engine/process-rss.ts';
import type { RunPlan } from '../src/protocol/index.ts';

export interface EngineBenchOptions {
  /** Runs per latency series. Default 40. */
  runs?: number;
  /** Children in the pool (and concurrency of the throughput series). Default 2. */
  poolSize?: number;
  /** `fixture` (local, no network) or `language-common` (from the registry). Default fixture. */
  adaptor?: 'fixture' | 'language-common';
  /** Pause between sequential latency runs, like a trickle of claims. Default 150 ms. */
  gapMs?: number;
  /** Adaptor repo to use (and keep); default a temporary one, removed at the end. */
  repoDir?: string;
  logger?: Logger;
}

export interface LatencySummary {
  p50: number;
  p90: number;
  max: number;
}

export interface EngineBenchResults {
  adaptor: string;
  poolSize: number;
  runs: number;
  cold: { claimToStartMs: LatencySummary; startToCompleteMs: LatencySummary };
  warm: { claimToStartMs: LatencySummary; startToCompleteMs: LatencySummary };
  throughput: { runs: number; seconds: number; runsPerSecond: number; coldRunsPerSecond: number };
  rssMb: { idle: number; busy: number };
}

const FIXTURE_DIR = fileURLToPath(new URL('../test/fixtures/adaptor/', import.meta.url));
const ADAPTORS = { fixture: '@openfn/language-lanesfixture@1.0.0', 'language-common': '@openfn/language-common@3.3.4' } as const;

function summary(values: number[]): LatencySummary {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
  const round = (n: number): number => Math.round(n * 100) / 100;
  return { p50: round(at(0.5)), p90: round(at(0.9)), max: round(sorted[sorted.length - 1] ?? NaN) };
}

function trivialPlan(adaptor: string): RunPlan {
  return {
    id: 'bench',
    dataclip_id: 'd',
    starting_node_id: 't',
    triggers: [{ id: 't' }],
    jobs: [{ id: 'j', adaptor, body: "fn(state => { console.log('first line'); return { ...state, data: { ok: true } }; })" }],
    edges: [{ id: 'e', source_trigger_id: 't', target_job_id: 'j', condition: 'always' }],
  };
}

let counter = 0;

/** One run; times from execute() to the first JOB log and from there to the outcome. */
async function timedRun(engine: Engine, plan: RunPlan): Promise<{ claimToStart: number; startToComplete: number }> {
  const claimed = performance.now();
  let firstLine = NaN;
  const request: RunRequest = {
    runId: `bench-${++counter}`,
    plan,
    input: { data: {} },
    limits: { timeoutMs: 60_000, memoryLimitMb: 500, payloadLimitMb: 10, logPayloadLimitMb: 1, statePropsToRemove: ['configuration'] },
    fetchCredential: async () => ({}),
    onEvent: (e) => {
      if (e.type === 'log' && e.source === 'JOB' && Number.isNaN(firstLine)) firstLine = performance.now();
    },
  };
  const outcome = await engine.execute(request);
  const done = performance.now();
  if (outcome.reason !== 'success') throw new Error(`bench run ended ${outcome.reason}: ${outcome.errorMessage}`);
  return { claimToStart: firstLine - claimed, startToComplete: done - firstLine };
}

async function treeRssMb(engine: Engine): Promise<number> {
  let total = process.memoryUsage().rss;
  for (const pid of engine.childPids()) total += (await processRssBytes(pid)) ?? 0;
  return Math.round(total / 1024 / 1024);
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function series(engine: Engine, plan: RunPlan, runs: number, gapMs: number) {
  const claim: number[] = [];
  const complete: number[] = [];
  for (let i = 0; i < runs; i++) {
    const r = await timedRun(engine, plan);
    claim.push(r.claimToStart);
    complete.push(r.startToComplete);
    await sleep(gapMs);
  }
  return { claimToStartMs: summary(claim), startToCompleteMs: summary(complete) };
}

async function throughput(engine: Engine, plan: RunPlan, runs: number, concurrency: number): Promise<{ seconds: number; runsPerSecond: number }> {
  const started = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < runs) {
        next++;
        await timedRun(engine, plan);
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  return { seconds: Math.round(seconds * 100) / 100, runsPerSecond: Math.round((runs / seconds) * 10) / 10 };
}

export async function runEngineBench(options: EngineBenchOptions = {}): Promise<EngineBenchResults> {
  const runs = options.runs ?? 40;
  const poolSize = options.poolSize ?? 2;
  const gapMs = options.gapMs ?? 150;
  const which = options.adaptor ?? 'fixture';
  const adaptor = ADAPTORS[which];
  const plan = trivialPlan(adaptor);
  const repoDir = options.repoDir ?? (await mkdtemp(path.join(tmpdir(), 'lanes-bench-')));
  const base: EngineOptions = {
    poolSize,
    repoDir,
    logger: options.logger ?? pino({ level: 'silent' }),
    localAdaptors: { '@openfn/language-lanesfixture': FIXTURE_DIR },
  };
  try {
    const cold = await Engine.create({ ...base, warmSpares: false });
    let coldResult;
    let coldThroughput;
    try {
      await timedRun(cold, plan); // installs the adaptor; not measured
      coldResult = await series(cold, plan, Math.max(5, Math.floor(runs / 2)), gapMs);
      coldThroughput = await throughput(cold, plan, runs, poolSize);
    } finally {
      await cold.stop();
    }

    const warm = await Engine.create({ ...base, preloadAdaptors: [adaptor] });
    try {
      for (let i = 0; i < 3; i++) await timedRun(warm, plan); // spares now hold the adaptor
      await sleep(500);
      const idle = await treeRssMb(warm);
      const warmResult = await series(warm, plan, runs, gapMs);
      let busy = 0;
      const sampler = setInterval(() => void treeRssMb(warm).then((mb) => (busy = Math.max(busy, mb))), 50);
      const tp = await throughput(warm, plan, runs * 2, poolSize);
      clearInterval(sampler);
      return {
        adaptor,
        poolSize,
        runs,
        cold: coldResult,
        warm: warmResult,
        throughput: { runs: runs * 2, seconds: tp.seconds, runsPerSecond: tp.runsPerSecond, coldRunsPerSecond: coldThroughput.runsPerSecond },
        rssMb: { idle, busy },
      };
    } finally {
      await warm.stop();
    }
  } finally {
    if (options.repoDir === undefined) await rm(repoDir, { recursive: true, force: true });
  }
}

export function formatEngineBench(r: EngineBenchResults): string {
  const row = (name: string, s: LatencySummary): string => `| ${name} | ${s.p50} | ${s.p90} | ${s.max} |`;
  return [
    `Engine, ${r.adaptor}, pool of ${r.poolSize}, ${r.runs} runs per series`,
    '',
    '| latency (ms) | p50 | p90 | max |',
    '| --- | --- | --- | --- |',
    row('cold claim → first line', r.cold.claimToStartMs),
    row('cold first line → complete', r.cold.startToCompleteMs),
    row('warm claim → first line', r.warm.claimToStartMs),
    row('warm first line → complete', r.warm.startToCompleteMs),
    '',
    `throughput at full capacity: ${r.throughput.runsPerSecond} runs/s warm (${r.throughput.runs} runs in ${r.throughput.seconds} s), ${r.throughput.coldRunsPerSecond} runs/s without spares`,
    `RSS of the tree: ${r.rssMb.idle} MB idle, ${r.rssMb.busy} MB busy`,
  ].join('\n');
}

if (import.meta.main) {
  const { values } = parseArgs({ options: { runs: { type: 'string' }, pool: { type: 'string' }, adaptor: { type: 'string' } } });
  const adaptor = values.adaptor === 'language-common' ? 'language-common' : 'fixture';
  const opts: EngineBenchOptions = { adaptor };
  if (values.runs) opts.runs = Number(values.runs);
  if (values.pool) opts.poolSize = Number(values.pool);
  const results = await runEngineBench(opts);
  console.log(formatEngineBench(results));
}
