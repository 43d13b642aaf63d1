/**
 * Figures in the docs come from one place: docs/benchmarks.md is what
 * `npm run bench` wrote together with bench/results/latest.json, and the other
 * docs point at it instead of quoting figures of their own (docs/engine.md,
 * "Measured"). These checks catch a benchmarks page edited by hand or left
 * behind by a partial run (`BENCH_ONLY` writes only latest.json).
 */
import test from 'ava';
import { readFileSync } from 'node:fs';

const read = (path: string) => readFileSync(new URL(`../../${path}`, import.meta.url), 'utf8');

interface Latest {
  quick: boolean;
  date: string;
  commit: string;
  machine: { node: string };
  engine: {
    warm: { claimToStartMs: { p50: number; p90: number; max: number } };
    throughput: { runsPerSecond: number; coldRunsPerSecond: number };
    rssMb: { idle: number; busy: number };
  };
}

const latest = JSON.parse(read('bench/results/latest.json')) as Latest;
const benchmarks = read('docs/benchmarks.md');

test('docs/benchmarks.md names the run that wrote bench/results/latest.json', (t) => {
  t.true(
    // A BENCH_QUICK=1 run says so between the command and the date.
    benchmarks.includes(`Measured by \`npm run bench\`${latest.quick ? ' (BENCH_QUICK=1: fewer runs, one trial)' : ''} on ${latest.date.slice(0, 10)}, commit \`${latest.commit}\``),
    `docs/benchmarks.md should name ${latest.date.slice(0, 10)} and ${latest.commit}: a partial run (BENCH_ONLY) rewrites only latest.json; run the full \`npm run bench\` or keep the previous latest.json`,
  );
  t.true(benchmarks.includes(`Node ${latest.machine.node}`));
});

test('the engine figures on docs/benchmarks.md are those of bench/results/latest.json', (t) => {
  const { warm, throughput, rssMb } = latest.engine;
  t.true(benchmarks.includes(`| warm claim → first line | ${warm.claimToStartMs.p50} | ${warm.claimToStartMs.p90} | ${warm.claimToStartMs.max} |`));
  t.true(benchmarks.includes(`throughput at full capacity: ${throughput.runsPerSecond} runs/s warm`));
  t.true(benchmarks.includes(`${throughput.coldRunsPerSecond} runs/s without spares`));
  t.true(benchmarks.includes(`RSS of the tree: ${rssMb.idle} MB idle, ${rssMb.busy} MB busy`));
});

test('docs/engine.md quotes no engine latency or throughput of its own: it points at benchmarks.md', (t) => {
  const engine = read('docs/engine.md');
  const measured = engine.slice(engine.indexOf('## Measured'));
  t.regex(measured, /\[benchmarks\.md\]\(benchmarks\.md\), "Engine alone"/);
  t.notRegex(measured.split('\n## ')[0] ?? '', /\d+(\.\d+)? ?(ms|runs\/s|MB)\b/);
});
