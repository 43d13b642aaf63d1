/**
 * `npm run bench`: every benchmark against real processes on loopback,
 * printed as tables and written to docs/benchmarks.md and
 * bench/results/latest.json. `BENCH_QUICK=1` runs a reduced version.
 *
 * Figures are medians of repeated trials with the spread (min–max) beside
 * them. The machines are shared and noisy: compare the figures side by side
 * within one run, not across runs.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { resolveBaseline } from './baseline.ts';
import { formatClaimPath, formatClaimPathByStore, runClaimPathByStore } from './claim-path.ts';
import type { ClaimPathResult } from './claim-path.ts';
import { formatDashboardBench, runDashboardBench } from './dashboard.ts';
import { PRESIGNED_CLAIM_GAP_MS, formatPresignedClaim, runPresignedClaimBench } from './presigned-claim.ts';
import type { PresignedClaimResult } from './presigned-claim.ts';
import type { DashboardBenchRow } from './dashboard.ts';
import { formatEngineBench, runEngineBench } from './engine.ts';
import type { EngineBenchResults } from './engine.ts';
import { formatListingBench, runListingBench } from './listing.ts';
import type { ListingResult } from './listing.ts';
import { IDLE_GAP_MS, idleTrial } from './scenarios/idle-latency.ts';
import type { IdleTrial } from './scenarios/idle-latency.ts';
import { MEMORY_CEILING_CONFIGS, memoryCeilingTrial } from './scenarios/memory-ceiling.ts';
import type { MemoryCeilingConfig, MemoryCeilingTrial } from './scenarios/memory-ceiling.ts';
import { IDLE_SPELL_MS, idleSpellTrial, memoryTrial } from './scenarios/memory.ts';
import type { IdleSpellTrial, MemoryTrial } from './scenarios/memory.ts';
import { SATURATION_CONFIGS, saturationTrial } from './scenarios/saturation.ts';
import type { SaturationTrial } from './scenarios/saturation.ts';
import { throughputTrial } from './scenarios/throughput.ts';
import type { ThroughputTrial } from './scenarios/throughput.ts';
import { figure, formatFigure, percentile, table } from './stats.ts';
import type { Figure } from './stats.ts';

const root = fileURLToPath(new URL('../', import.meta.url));
const quick = (process.env['BENCH_QUICK'] ?? '') !== '' && process.env['BENCH_QUICK'] !== '0';
const trials = quick ? 1 : 3;
const only = new Set((process.env['BENCH_ONLY'] ?? '').split(',').filter((name) => name.length > 0));
const wanted = (name: string) => only.size === 0 || only.has(name);
// Adaptors (and their bundles) are installed once and kept between bench runs: installing is not what is measured.
const repoDir = process.env['BENCH_REPO_DIR'] ?? join(root, 'node_modules', '.cache', 'lanes-bench', 'repo');
mkdirSync(repoDir, { recursive: true });

const log = (line: string) => process.stdout.write(`${line}\n`);
const baseline = resolveBaseline(process.env['BENCH_BASELINE'], process.env['BENCH_BASELINE_SERVER'] === '1');

/** Whose baseline figures the idle table shows beside this checkout's. */
const baselineSide = (of: { label: string; server: boolean }) => `${of.server ? 'server and worker' : 'worker'} of \`${of.label}\``;

async function repeat<T>(name: string, count: number, trial: (index: number) => Promise<T>): Promise<T[]> {
  const results: T[] = [];
  for (let i = 0; i < count; i += 1) {
    log(`  ${name}: trial ${i + 1}/${count}`);
    results.push(await trial(i));
  }
  return results;
}

const ms = (values: number[]) => formatFigure(figure(values), 'ms', 1);
const checkFailures = (name: string, failed: string[][]) => {
  const all = failed.flat();
  if (all.length > 0) log(`  warning: ${name}: ${all.length} runs did not succeed: ${all.slice(0, 3).join('; ')}`);
  return all.length;
};

interface Results {
  quick: boolean;
  date: string;
  commit: string;
  machine: { cpus: number; model: string; memoryGb: number; node: string };
  saturation?: Record<string, SaturationTrial[]>;
  idle?: IdleTrial[];
  /** The same scenarios with `BENCH_BASELINE`'s worker, interleaved with these. */
  baseline?: { label: string; saturation?: SaturationTrial[]; idle?: IdleTrial[]; idleSpell?: IdleSpellTrial[] };
  throughput?: Record<string, ThroughputTrial[]>;
  memory?: MemoryTrial[];
  /** The tree after a quiet spell, and fast-lane runs arriving then. */
  idleSpell?: IdleSpellTrial[];
  /** The same with every child kept warm (`--idle-child-timeout-seconds 0`). */
  idleSpellAllWarm?: IdleSpellTrial[];
  memoryCeiling?: Record<string, MemoryCeilingTrial[]>;
  engine?: EngineBenchResults;
  claimPath?: ClaimPathResult;
  /** SQLite, PostgreSQL with one server, with two (the first is `claimPath`). */
  claimPathByStore?: ClaimPathResult[];
  /** An idle server's claim of a just-submitted run, token signed ahead or at the claim. */
  presignedClaim?: PresignedClaimResult;
  dashboard?: DashboardBenchRow[];
  listing?: ListingResult[];
}

const commit = (() => {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: root, encoding: 'utf8' }).trim();
  } catch {
    return 'unknown';
  }
})();
const results: Results = {
  quick,
  date: new Date().toISOString(),
  commit,
  machine: { cpus: cpus().length, model: cpus()[0]?.model ?? 'unknown', memoryGb: Math.round(totalmem() / 2 ** 30), node: process.version },
};
const sections: string[] = [];

log(`Lanes benchmarks${quick ? ' (quick)' : ''}: ${results.machine.cpus} × ${results.machine.model}, Node ${process.version}, commit ${commit}`);
if (baseline) {
  results.baseline = { label: baseline.label };
  log(`  side by side with the worker of ${baseline.label} (BENCH_BASELINE)${baseline.server ? ', and its server in the idle scenario (BENCH_BASELINE_SERVER)' : ''}`);
}

if (wanted('saturation')) {
  log('Fast lane under saturation');
  const byConfig: Record<string, SaturationTrial[]> = {};
  // Interleave the configurations so that drift in machine load hits both alike.
  for (let i = 0; i < trials; i += 1) {
    for (const workloops of SATURATION_CONFIGS) {
      log(`  ${workloops}: trial ${i + 1}/${trials}`);
      (byConfig[workloops] ??= []).push(await saturationTrial(workloops, { repoDir, quick }));
    }
    if (baseline && results.baseline) {
      log(`  ${SATURATION_CONFIGS[0]} (${baseline.label}): trial ${i + 1}/${trials}`);
      (results.baseline.saturation ??= []).push(await saturationTrial(SATURATION_CONFIGS[0], { repoDir, quick, bin: baseline.bin }));
    }
  }
  results.saturation = byConfig;
  const row = (label: string, runs: SaturationTrial[]) => [
    label,
    ms(runs.map((r) => r.firstLineMs.p50)),
    ms(runs.map((r) => r.firstLineMs.p95)),
    ms(runs.map((r) => r.firstLineMs.p99)),
    ms(runs.map((r) => r.startMs.p50)),
    ms(runs.map((r) => r.startMs.p95)),
    ms(runs.map((r) => r.startMs.p99)),
    ms(runs.map((r) => r.completeMs.p50)),
    ms(runs.map((r) => r.completeMs.p99)),
  ];
  const rows = SATURATION_CONFIGS.map((workloops) => row(`\`${workloops}\``, byConfig[workloops] ?? []));
  if (baseline && results.baseline?.saturation) rows.splice(1, 0, row(`\`${SATURATION_CONFIGS[0]}\`, worker of \`${baseline.label}\``, results.baseline.saturation));
  const reserved = figure((byConfig[SATURATION_CONFIGS[0]] ?? []).map((r) => r.firstLineMs.p50)).median;
  const shared = figure((byConfig[SATURATION_CONFIGS[1]] ?? []).map((r) => r.firstLineMs.p50)).median;
  checkFailures('saturation', Object.values(byConfig).flat().map((r) => r.failed));
  const first = byConfig[SATURATION_CONFIGS[0]]?.[0];
  sections.push([
    '## Fast lane under saturation',
    '',
    `${first ? first.fastRuns : '?'} trivial runs are submitted to \`fast_lane\` one every 250 ms while ${quick ? 5 : 10} long runs (${quick ? 2 : 5} s each) fill the worker from \`default\`. Latencies of the fast-lane runs from submit: to the first line of job code (the job stamps \`Date.now()\` into its state: where the user's code begins), to \`run:start\` (the server's \`started_at\`) and to \`run:complete\`:`,
    '',
    table(['lanes', 'first line p50', 'first line p95', 'first line p99', 'start p50', 'start p95', 'start p99', 'complete p50', 'complete p99'], rows),
    '',
    `With a reserved lane the fast-lane runs reach their first line ${Number.isFinite(shared / reserved) ? `${(shared / reserved).toFixed(0)}×` : ''} sooner (median p50 ${reserved.toFixed(1)} ms against ${shared.toFixed(1)} ms). Goal: p99 submit→first line under 10 ms with the reserved lane, while the unreserved configuration waits seconds. From the server's \`created_at\` instead (leaving out the client's request and the server reading it), the reserved lane's first line: p50 ${ms((byConfig[SATURATION_CONFIGS[0]] ?? []).map((r) => r.createdFirstLineMs.p50))}, p99 ${ms((byConfig[SATURATION_CONFIGS[0]] ?? []).map((r) => r.createdFirstLineMs.p99))}. The reference worker's fast-lane runs waited 10.7 s (p50) in this scenario.`,
  ].join('\n'));
  log(sections.at(-1) ?? '');
}

let isolatedCpuSeconds = Number.NaN;
if (wanted('idle') || wanted('throughput')) {
  log('Idle latency');
  const idle: IdleTrial[] = [];
  // With a baseline, its trials alternate with these, so that drift in machine load hits both alike.
  for (let i = 0; i < trials; i += 1) {
    log(`  idle: trial ${i + 1}/${trials}`);
    idle.push(await idleTrial({ repoDir, quick }));
    if (baseline && results.baseline) {
      log(`  idle (${baseline.label}): trial ${i + 1}/${trials}`);
      (results.baseline.idle ??= []).push(await idleTrial({ repoDir, quick, bin: baseline.bin, ...(baseline.server ? { serverBin: baseline.bin } : {}) }));
    }
  }
  results.idle = idle;
  const before = results.baseline?.idle;
  const idleRow = (name: string, pick: (r: IdleTrial) => { p50: number; p99: number }) => [
    name,
    ms(idle.map((r) => pick(r).p50)),
    ms(idle.map((r) => pick(r).p99)),
    ...(before ? [ms(before.map((r) => pick(r).p50)), ms(before.map((r) => pick(r).p99))] : []),
  ];
  isolatedCpuSeconds = figure(idle.map((r) => r.cpuSecondsPerRun)).median;
  checkFailures('idle', idle.map((r) => r.failed));
  sections.push([
    '## Idle latency',
    '',
    `${idle[0]?.runs ?? '?'} trivial runs one after another on lanes \`fast_lane:1 manual>*:4\`, each submitted with \`?wait\` ${IDLE_GAP_MS} ms after the last finished, so that the worker is idle when it arrives (after each run the engine boots the next fresh thread and adaptor instance in the background):`,
    '',
    table(['figure', 'p50', 'p99', ...(before && baseline ? [`p50, ${baselineSide(baseline)}`, `p99, ${baselineSide(baseline)}`] : [])], [
      idleRow('submit → first line of job code', (r) => r.firstLineMs),
      idleRow('created_at → first line of job code', (r) => r.createdFirstLineMs),
      idleRow('submit → run:start', (r) => r.startMs),
      idleRow('submit → run:complete', (r) => r.completeMs),
    ]),
    '',
    `CPU per isolated run (server + worker + engine children, runs one at a time): ${formatFigure(figure(idle.map((r) => r.cpuSecondsPerRun * 1000)), 'ms')}. The first line is stamped by the job itself (\`Date.now()\` into its state); \`run:start\` is sent when the run's thread takes the run, just before its job is loaded. \`created_at → first line\` starts at the server's stamp on the run (the measure issue #14 set its goal in), so it leaves out the client's request on its way and the server reading and checking its body; \`submit →\` starts on the client's clock just before its call, as a user feels it. Goal: p50 first line under 5 ms and submit→complete under 25 ms. The reference worker: about 0.9 s to start and 1.3 s to complete.`,
  ].join('\n'));
  log(sections.at(-1) ?? '');
}

if (wanted('throughput')) {
  log('Throughput');
  const byConfig: Record<string, ThroughputTrial[]> = {};
  for (let i = 0; i < trials; i += 1) {
    for (const workloops of ['*:4', '*:8']) {
      log(`  ${workloops}: trial ${i + 1}/${trials}`);
      (byConfig[workloops] ??= []).push(await throughputTrial(workloops, { repoDir, quick }));
    }
    // With a baseline, its `*:4` trials alternate with these, so that drift in machine load hits both alike.
    if (baseline) {
      log(`  *:4 (${baseline.label}): trial ${i + 1}/${trials}`);
      (byConfig[`*:4 (worker of ${baseline.label})`] ??= []).push(await throughputTrial('*:4', { repoDir, quick, bin: baseline.bin }));
    }
  }
  results.throughput = byConfig;
  checkFailures('throughput', Object.values(byConfig).flat().map((r) => r.failed));
  const cores = cpus().length;
  const ceiling = cores / isolatedCpuSeconds;
  const rows = Object.entries(byConfig).map(([workloops, runs]) => {
    const rate: Figure = figure(runs.map((r) => r.runsPerSecond));
    return [
      `\`${workloops}\``,
      formatFigure(rate, 'runs/s'),
      formatFigure(figure(runs.map((r) => r.cpuSecondsPerRun * 1000)), 'ms'),
      Number.isFinite(ceiling) ? `${((rate.median / ceiling) * 100).toFixed(0)} %` : 'n/a',
    ];
  });
  sections.push([
    '## Throughput',
    '',
    `${byConfig['*:4']?.[0]?.runs ?? '?'} trivial runs submitted at once, from the first submit to the last finish; CPU seconds of the whole server + worker tree per run (from /proc):`,
    '',
    table(['lanes', 'throughput', 'CPU per run', 'of the CPU ceiling'], rows),
    '',
    `Every run gets a fresh thread and a fresh adaptor instance, so one run costs about ${(isolatedCpuSeconds * 1000).toFixed(0)} ms of CPU when run alone (idle latency above); on ${cores} cores that caps throughput at about ${cores} / ${isolatedCpuSeconds.toFixed(3)} s ≈ ${ceiling.toFixed(1)} runs/s. Goal: over 5 runs/s (the reference worker: 0.9 with 5 slots) and within 80 % of that ceiling.`,
  ].join('\n'));
  log(sections.at(-1) ?? '');
}

if (wanted('memory')) {
  log('Memory');
  const memory = await repeat('memory', quick ? 1 : 2, () => memoryTrial({ repoDir, quick }));
  results.memory = memory;
  checkFailures('memory', memory.map((r) => r.failed));
  const mb = (values: number[]) => formatFigure(figure(values), 'MB', 0);
  sections.push([
    '## Memory',
    '',
    `Resident memory of the worker's process tree (the worker and its engine children), lanes \`fast_lane:1 manual>*:4\`:`,
    '',
    table(['moment', 'RSS'], [
      ['idle, after one run', mb(memory.map((r) => r.idleMb))],
      ['idle, after one run (PSS)', mb(memory.map((r) => r.idlePssMb ?? Number.NaN))],
      ['every slot busy', mb(memory.map((r) => r.busyMb))],
      [`after ${memory[0]?.afterRuns ?? '?'} more runs`, mb(memory.map((r) => r.afterMb))],
    ]),
    '',
    `Growth over those runs: ${mb(memory.map((r) => r.afterMb - r.idleMb))}: each child settles 30-50 MB above where it started over its first few hundred runs and starts again when it is recycled (docs/memory.md, "Growth over many runs"). The reference worker's tree held about 920 MB with 5 slots busy.`,
  ].join('\n'));
  log(sections.at(-1) ?? '');

  log('Memory after a quiet spell');
  const spell: IdleSpellTrial[] = [];
  const allWarm: IdleSpellTrial[] = [];
  // Every child kept warm (the former default) and the baseline alternate with these, so that drift in machine load hits all alike.
  for (let i = 0; i < (quick ? 1 : 2); i += 1) {
    log(`  idle spell: trial ${i + 1}`);
    spell.push(await idleSpellTrial({ repoDir, quick }));
    log(`  idle spell, every child warm: trial ${i + 1}`);
    allWarm.push(await idleSpellTrial({ repoDir, quick, extraArgs: ['--idle-child-timeout-seconds', '0'] }));
    if (baseline && results.baseline) {
      log(`  idle spell (${baseline.label}): trial ${i + 1}`);
      (results.baseline.idleSpell ??= []).push(await idleSpellTrial({ repoDir, quick, bin: baseline.bin }));
    }
  }
  results.idleSpell = spell;
  results.idleSpellAllWarm = allWarm;
  checkFailures('idle spell', [...spell, ...allWarm, ...(results.baseline?.idleSpell ?? [])].map((r) => r.failed));
  const spellRow = (label: string, r: IdleSpellTrial[]) => [
    label,
    mb(r.map((x) => x.rssMb)),
    mb(r.map((x) => x.pssMb)),
    String(r[0]?.processes ?? '?'),
    ms(r.map((x) => x.firstLineMs[0] ?? Number.NaN)),
    ms(r.map((x) => percentile(x.firstLineMs, 50))),
    ms(r.map((x) => percentile(x.createdFirstLineMs, 50))),
  ];
  const spellRows = [spellRow('this commit', spell), spellRow('this commit, `--idle-child-timeout-seconds 0`', allWarm)];
  if (baseline && results.baseline?.idleSpell) spellRows.push(spellRow(`worker of \`${baseline.label}\``, results.baseline.idleSpell));
  sections.push([
    '### After a quiet spell',
    '',
    `The same lanes, one run on each, then ${IDLE_SPELL_MS / 1000} s without runs: the tree's resident memory (RSS, and PSS, which splits the pages its processes share), then ${spell[0]?.firstLineMs.length ?? '?'} fast-lane runs one at a time, 1 s apart, submit → first line of job code (stamped by the job). Goal: under 300 MB RSS (the reference worker idles at about 210 MB) with the first line under 5 ms p50. The second row keeps every child warm (no retirement), so the two rows show what retiring idle children costs the fast lane's first line.`,
    '',
    table(['worker', `tree RSS after ${IDLE_SPELL_MS / 1000} s idle`, 'tree PSS', 'processes', 'first fast-lane run: first line', 'fast-lane first line p50', 'created_at → first line p50'], spellRows),
  ].join('\n'));
  log(sections.at(-1) ?? '');
}

if (wanted('memory-ceiling')) {
  log('Memory ceiling');
  const byConfig: Record<string, MemoryCeilingTrial[]> = {};
  // Side by side, alternating, so both see the same load on the shared machine.
  for (let i = 0; i < trials; i += 1) {
    for (const config of Object.keys(MEMORY_CEILING_CONFIGS) as MemoryCeilingConfig[]) {
      log(`  memory-ceiling ${config}: trial ${i + 1}/${trials}`);
      (byConfig[config] ??= []).push(await memoryCeilingTrial(config, { repoDir, quick }));
    }
  }
  results.memoryCeiling = byConfig;
  for (const trialsOf of Object.values(byConfig)) checkFailures('memory-ceiling', trialsOf.map((r) => r.failed));
  const mb = (values: number[]) => formatFigure(figure(values), 'MB', 0);
  sections.push([
    '## Memory ceiling',
    '',
    'A mix of runs declaring 64 MB and 1 GB (`run_memory_limit_mb`) that really allocate about 80 % of it in Buffers and hold it, submitted at once to `manual`, plus a trickle of fast-lane runs (one every 400 ms). Peak resident memory of the worker\'s tree sampled every 50 ms; runs killed `OOMError` although they stayed inside what they declared; fast-lane submit → first line of job code (stamped by the job). Same slots with and without the ceiling ([memory.md](memory.md)).',
    '',
    table(['configuration', 'peak tree RSS', 'killed inside their limit', 'fast first line p50', 'fast first line p99', 'wall time'], Object.entries(byConfig).map(([, r]) => [
      r[0]?.config ?? '',
      mb(r.map((x) => x.peakTreeMb)),
      String(r.reduce((sum, x) => sum + x.killedInsideLimit, 0)),
      ms(r.map((x) => x.fastFirstLineMs.p50)),
      ms(r.map((x) => x.fastFirstLineMs.p99)),
      formatFigure(figure(r.map((x) => x.wallSeconds)), 's', 1),
    ])),
  ].join('\n'));
  log(sections.at(-1) ?? '');
}

if (wanted('claims')) {
  log('Claim path');
  const byStore = await runClaimPathByStore({ quick });
  const claimPath = byStore[0];
  if (claimPath === undefined) throw new Error('no claim-path result');
  results.claimPath = claimPath;
  results.claimPathByStore = byStore;
  sections.push(
    [
      '## Claim path',
      '',
      `How many claims the server answers: ${claimPath.workers} workers × ${claimPath.lanesPerWorker} lanes, each lane pushing \`claim\` back to back, in the benchmark's own process against an in-process server.`,
      '',
      formatClaimPath(claimPath),
      '',
      '### By store',
      '',
      'The same trial, side by side in this run, on a SQLite file, on PostgreSQL (a throwaway local cluster, fsync off) with one server, and with two servers on one database, the workers split between them:',
      '',
      formatClaimPathByStore(byStore),
      '',
      'What limits each: on SQLite, the one server\'s event loop (a claim is a synchronous transaction, no network; a handout adds one RS256 signature per run). On PostgreSQL, round trips: a claim is a transaction of six to eight statements, each a round trip, and the pool (10 connections) bounds the claims in flight. With two servers the signing and protocol work is split over two processes, so handing out scales while the database, whose claims are write transactions on the head of the queue (`SKIP LOCKED`, so servers never wait on each other\'s rows), is the shared limit.',
    ].join('\n'),
  );
  log(sections.at(-1) ?? '');
}

if (wanted('presigned-claim')) {
  log('Claim of a just-submitted run');
  const presigned = await runPresignedClaimBench({ quick });
  results.presignedClaim = presigned;
  sections.push(
    [
      '## Claim of a just-submitted run',
      '',
      `An idle server's part of the idle path: ${presigned.runs} runs submitted over HTTP one at a time to each of two in-process servers on SQLite files, alternating, ${PRESIGNED_CLAIM_GAP_MS} ms apart, each with one phoenix client that claims as soon as \`work-available\` arrives. One server gives each run an id whose token it signed in idle time (the default), the other signs in the claim (\`presignedTokens: 0\`). The servers run in the benchmark's main thread, the client in a worker thread of its own.`,
      '',
      formatPresignedClaim(presigned),
    ].join('\n'),
  );
  log(sections.at(-1) ?? '');
}

if (wanted('dashboard')) {
  log('Dashboard');
  const dashboard = await runDashboardBench({ quick });
  results.dashboard = dashboard;
  sections.push(
    [
      '## Dashboard',
      '',
      'What an open dashboard costs the server: while at least one browser follows `GET /api/events`, the server builds the snapshot every 500 ms, one build for every open dashboard. The build on a SQLite file holding that many runs, all ended in the last 4 minutes (the timeline\'s worst case: it reads the newest 500), with 16 in flight; beside it, `queueStats()` alone (what `GET /api/queues` costs).',
      '',
      formatDashboardBench(dashboard),
    ].join('\n'),
  );
  log(sections.at(-1) ?? '');
}

if (wanted('listing')) {
  log('Listing at scale');
  const listing = await runListingBench({ quick });
  results.listing = listing;
  sections.push(
    [
      '## Listing at scale',
      '',
      `\`GET /api/runs\` through a real server on each store holding ${listing[0]?.runs.toLocaleString('en-US') ?? '?'} finished runs (inserted in bulk with SQL; 4 queues, 8 % failed): the newest page of 100, a page from the middle by the keyset cursor (\`before\`), the newest page of \`state=failed&queue=manual\`, that filter from the middle, and \`dead_letter=true\` (there are none: the worst case). p50 / p99 of the round trip, requests one at a time.`,
      '',
      formatListingBench(listing),
    ].join('\n'),
  );
  log(sections.at(-1) ?? '');
}

if (wanted('engine')) {
  log('Engine');
  // 600 ms between sequential runs: each run's child boots its next warm thread after the run (0.1-0.4 s
  // of CPU), so closer runs would measure the CPU ceiling, not a warm start.
  const engine = await runEngineBench({ adaptor: 'language-common', runs: quick ? 6 : 40, gapMs: 600, repoDir });
  results.engine = engine;
  sections.push(['## Engine alone', '', 'The engine without server or socket: time from `execute()` to the first line of job code, cold (no warm spare: a thread is started and the adaptor imported per run) and warm (runs 600 ms apart, so each finds a booted spare).', '', formatEngineBench(engine)].join('\n'));
  log(sections.at(-1) ?? '');
}

const header = [
  '# Benchmarks',
  '',
  `Measured by \`npm run bench\`${quick ? ' (BENCH_QUICK=1: fewer runs, one trial)' : ''} on ${results.date.slice(0, 10)}, commit \`${commit}\`: ${results.machine.cpus} × ${results.machine.model}, ${results.machine.memoryGb} GB, Node ${results.machine.node}. Real \`lanes server\` and \`lanes worker\` processes on loopback; runs use the real \`@openfn/language-common\` adaptor. Each figure is the median over ${trials} trial${trials > 1 ? 's' : ''}${trials > 1 ? ', with the spread (min–max) in brackets' : ''}. The machine is shared and noisy: read the figures side by side within this page, not against another run's.`,
  '',
  'Run it yourself: `npm run bench` (about 25 minutes on two cores), or `BENCH_QUICK=1 npm run bench` (fewer runs, one trial; the memory section still waits out three 60 s quiet spells). `BENCH_ONLY=saturation,idle` picks sections; `BENCH_BASELINE=DIR` runs another checkout\'s worker beside this one\'s (and, with `BENCH_BASELINE_SERVER=1`, its server too in the idle section). Raw figures: `bench/results/latest.json`.',
].join('\n');

mkdirSync(join(root, 'bench', 'results'), { recursive: true });
writeFileSync(join(root, 'bench', 'results', 'latest.json'), `${JSON.stringify(results, null, 2)}\n`);
if (only.size === 0) writeFileSync(join(root, 'docs', 'benchmarks.md'), `${[header, ...sections].join('\n\n')}\n`);
log(only.size === 0 ? 'wrote docs/benchmarks.md and bench/results/latest.json' : 'wrote bench/results/latest.json (docs/benchmarks.md is only written by a full run of every section)');
