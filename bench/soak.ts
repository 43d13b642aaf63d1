/**
 * The soak: a real `lanes server` and two real `lanes worker` processes
 * (bench/harness.ts), thousands of mixed runs (trivial, slow, failing,
 * crashing, OOM, timing out) across three queues, random SIGKILLs of
 * workers (each restarted) and one server restart on the same database.
 * Then every run is checked: exactly one terminal state, an attempt history
 * that agrees with it, and counts that add up. Prints a summary table and
 * exits 1 on any loss or inconsistency.
 *
 *   npm run soak                     # defaults: 3000 runs, at most 10 minutes of submitting
 *   SOAK_RUNS=500 SOAK_MINUTES=3 npm run soak
 *   SOAK_VERBOSE=1                   # the processes' own logs
 *
 * Not part of `npm test`. Results of the last recorded run: docs/reliability.md.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { AdaptorRepo } from '../src/runtime/adaptor-repo.ts';
import type { RunRecord } from '../src/client/lanes-api-client.ts';
import { startCluster } from './harness.ts';
import type { Cluster, ManagedProcess, WorkerOptions } from './harness.ts';

const RUNS = Number(process.env['SOAK_RUNS'] ?? 3000);
const MINUTES = Number(process.env['SOAK_MINUTES'] ?? 10);
const VERBOSE = process.env['SOAK_VERBOSE'] === '1';
/** Runs waiting or running at once: enough to keep every lane busy, not so many that the end drags. */
const MAX_OUTSTANDING = Number(process.env['SOAK_OUTSTANDING'] ?? 40);
const KILL_EVERY_MS = Number(process.env['SOAK_KILL_EVERY_S'] ?? 45) * 1000;
const MAX_ATTEMPTS = 3;
const TERMINAL = new Set(['success', 'failed', 'crashed', 'killed', 'cancelled', 'exception', 'lost']);
const RETRYABLE = new Set(['lost', 'crashed']);
const FIXTURE = '@openfn/language-lanesfixture@1.0.0';
const FIXTURE_DIR = fileURLToPath(new URL('../test/fixtures/adaptor/', import.meta.url));
const QUEUES = ['fast_lane', 'manual', 'default'] as const;

interface Kind {
  name: string;
  weight: number;
  body: () => string;
  /** States a run of this kind may end in (a worker kill can make any of them `lost` or retried). */
  expected: readonly string[];
  options?: Record<string, unknown>;
}

const KINDS: Kind[] = [
  { name: 'trivial', weight: 50, body: () => 'fn((state) => ({ ...state, data: { ok: true } }))', expected: ['success'] },
  { name: 'slow', weight: 14, body: () => `fn((state) => new Promise((resolve) => setTimeout(() => resolve(state), ${200 + Math.floor(Math.random() * 1300)})))`, expected: ['success'] },
  { name: 'failing', weight: 14, body: () => "fn(() => { throw new Error('soak failure'); })", expected: ['failed'] },
  { name: 'crashing', weight: 6, body: () => 'fn((state) => {', expected: ['crashed'] },
  { name: 'oom', weight: 6, body: () => 'fn(() => { const hog = []; for (;;) hog.push(new Array(1e5).fill(Math.random())); })', expected: ['killed'] },
  { name: 'timeout', weight: 6, body: () => 'fn(() => new Promise(() => {}))', expected: ['killed'], options: { run_timeout_ms: 1500 } },
  { name: 'logging', weight: 4, body: () => "fn((state) => { for (let i = 0; i < 20; i++) console.log('line', i, { i }); return state; })", expected: ['success'] },
];

function pickKind(): Kind {
  const total = KINDS.reduce((sum, k) => sum + k.weight, 0);
  let at = Math.random() * total;
  for (const kind of KINDS) {
    at -= kind.weight;
    if (at < 0) return kind;
  }
  return KINDS[0] as Kind;
}

function planFor(kind: Kind): Record<string, unknown> {
  return {
    triggers: [{ id: 'trigger', type: 'webhook' }],
    jobs: [{ id: 'job-1', body: kind.body(), adaptor: FIXTURE }],
    edges: [{ id: 'edge-1', source_trigger_id: 'trigger', target_job_id: 'job-1', condition: 'always' }],
    ...(kind.options ? { options: kind.options } : {}),
  };
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const log = (message: string): void => void process.stdout.write(`[soak ${new Date().toISOString().slice(11, 19)}] ${message}\n`);

const WORKERS: WorkerOptions[] = [
  { workloops: 'fast_lane:1 manual>*:3', extraArgs: ['--run-memory', '128', '--max-run-duration-seconds', '20'] },
  { workloops: 'default>*:3 manual:1', extraArgs: ['--run-memory', '128', '--max-run-duration-seconds', '20'] },
];

interface Submitted {
  id: string;
  kind: string;
  queue: string;
}

async function main(): Promise<number> {
  const started = Date.now();
  const repoDir = mkdtempSync(join(tmpdir(), 'lanes-soak-repo-'));
  // The fixture adaptor installed once: no worker reaches for a registry.
  const repo = await AdaptorRepo.create({ repoDir, logger: pino({ level: 'silent' }), localAdaptors: { '@openfn/language-lanesfixture': FIXTURE_DIR } });
  await repo.resolve(FIXTURE);

  const cluster: Cluster = await startCluster({ repoDir, verbose: VERBOSE });
  const slots: Array<ManagedProcess | undefined> = [];
  for (const options of WORKERS) slots.push(await cluster.startWorker(options));
  log(`server ${cluster.serverUrl}, ${slots.length} workers; ${RUNS} runs, at most ${MINUTES} min of submitting`);

  const submitted: Submitted[] = [];
  const open = new Set<string>();
  let kills = 0;
  let serverRestarts = 0;
  let submitErrors = 0;
  let chaosBusy = false;
  const deadline = started + MINUTES * 60_000;

  // Chaos: SIGKILL a random worker now and then (restarted at once), and restart the server once, halfway.
  const chaos = async (): Promise<void> => {
    if (chaosBusy) return;
    chaosBusy = true;
    try {
      const i = Math.floor(Math.random() * slots.length);
      const victim = slots[i];
      if (victim) {
        log(`SIGKILL ${victim.name} (pid ${victim.pid}) with ${open.size} runs open`);
        slots[i] = undefined;
        await victim.kill();
        // Its engine children exit when their parent's IPC channel closes.
        kills++;
        slots[i] = await cluster.startWorker(WORKERS[i] as WorkerOptions);
      }
    } catch (error) {
      log(`chaos step failed: ${String(error)}`);
    } finally {
      chaosBusy = false;
    }
  };
  const chaosTimer = setInterval(() => void chaos(), KILL_EVERY_MS);

  let lastReport = Date.now();
  while (submitted.length < RUNS && Date.now() < deadline) {
    if (serverRestarts === 0 && submitted.length >= RUNS / 2) {
      log(`restarting the server with ${open.size} runs open`);
      serverRestarts++;
      while (chaosBusy) await sleep(50);
      await cluster.restartServer();
    }
    if (open.size >= MAX_OUTSTANDING) {
      await refreshOpen(cluster, open);
      if (open.size >= MAX_OUTSTANDING) await sleep(100);
      continue;
    }
    const kind = pickKind();
    const queue = QUEUES[Math.floor(Math.random() * QUEUES.length)] as string;
    try {
      const run = await cluster.client.submitRun({ queue, plan: planFor(kind), input: { data: { n: submitted.length } }, max_attempts: MAX_ATTEMPTS });
      submitted.push({ id: run.id, kind: kind.name, queue });
      open.add(run.id);
    } catch (error) {
      // A refused submission is not a run: it is counted, not checked. (During the server restart, for instance.)
      submitErrors++;
      if (submitErrors % 10 === 1) log(`submit failed (${submitErrors} so far): ${String(error)}`);
      await sleep(200);
    }
    if (Date.now() - lastReport > 15_000) {
      lastReport = Date.now();
      log(`${submitted.length} submitted, ${open.size} open, ${kills} kills`);
    }
  }
  clearInterval(chaosTimer);
  while (chaosBusy) await sleep(50);
  const submitSeconds = (Date.now() - started) / 1000;
  log(`submitting done: ${submitted.length} runs in ${submitSeconds.toFixed(0)} s; waiting for every run to end`);

  // Every run must end: leases (30 s) bring back the runs of killed workers, timeouts end the rest.
  const drainDeadline = Date.now() + 180_000;
  while (open.size > 0 && Date.now() < drainDeadline) {
    await refreshOpen(cluster, open);
    if (open.size > 0) await sleep(500);
  }

  const views = new Map<string, RunRecord>();
  for (const run of submitted) views.set(run.id, await cluster.client.getRun(run.id));
  const problems = check(submitted, views);
  const duration = (Date.now() - started) / 1000;
  printSummary(submitted, views, { kills, serverRestarts, submitErrors, duration, problems });
  await cluster.close();
  rmSync(repoDir, { recursive: true, force: true });
  return problems.length === 0 ? 0 : 1;
}

async function refreshOpen(cluster: Cluster, open: Set<string>): Promise<void> {
  for (const id of [...open]) {
    try {
      const run = await cluster.client.getRun(id);
      if (TERMINAL.has(run.state)) open.delete(id);
    } catch {
      return; // the server is restarting: look again later
    }
  }
}

interface Attempt {
  attempt: number;
  state: string;
  finished_at: string | null;
}

/** Every inconsistency found; empty when nothing was lost or duplicated. */
function check(submitted: readonly Submitted[], views: ReadonlyMap<string, RunRecord>): string[] {
  const problems: string[] = [];
  const seen = new Set<string>();
  for (const run of submitted) {
    if (seen.has(run.id)) problems.push(`${run.id}: submitted twice under one id`);
    seen.add(run.id);
    const view = views.get(run.id);
    if (!view) {
      problems.push(`${run.id}: missing from the server`);
      continue;
    }
    if (!TERMINAL.has(view.state)) problems.push(`${run.id} (${run.kind}): left ${view.state}`);
    const history = (view['history'] as Attempt[] | undefined) ?? [];
    const attempts = Number(view['attempts'] ?? 0);
    if (history.length !== attempts) problems.push(`${run.id}: ${attempts} attempts but ${history.length} in its history`);
    if (attempts > MAX_ATTEMPTS) problems.push(`${run.id}: ${attempts} attempts, more than ${MAX_ATTEMPTS}`);
    history.forEach((attempt, i) => {
      if (attempt.attempt !== i + 1) problems.push(`${run.id}: attempt ${i + 1} numbered ${attempt.attempt}`);
      if (!TERMINAL.has(attempt.state)) problems.push(`${run.id}: attempt ${attempt.attempt} left ${attempt.state}`);
      // Only lost and crashed attempts are retried (docs/server.md, "Retries"): anything else before the last is a verdict overridden.
      if (i < history.length - 1 && !RETRYABLE.has(attempt.state)) problems.push(`${run.id}: attempt ${attempt.attempt} ended ${attempt.state} and was retried`);
    });
    const last = history.at(-1);
    if (last && last.state !== view.state && TERMINAL.has(view.state)) problems.push(`${run.id}: run is ${view.state}, last attempt ${last.state}`);
  }
  return problems;
}

function printSummary(
  submitted: readonly Submitted[],
  views: ReadonlyMap<string, RunRecord>,
  facts: { kills: number; serverRestarts: number; submitErrors: number; duration: number; problems: string[] },
): void {
  const states = ['success', 'failed', 'crashed', 'killed', 'exception', 'lost', 'cancelled', 'other'];
  const rows = new Map<string, Map<string, number>>();
  const unexpected: string[] = [];
  let retried = 0;
  for (const run of submitted) {
    const view = views.get(run.id);
    const state = view && TERMINAL.has(view.state) ? view.state : 'other';
    const row = rows.get(run.kind) ?? new Map<string, number>();
    row.set(state, (row.get(state) ?? 0) + 1);
    rows.set(run.kind, row);
    if (Number(view?.['attempts'] ?? 0) > 1) retried++;
    const kind = KINDS.find((k) => k.name === run.kind);
    if (kind && state !== 'lost' && !kind.expected.includes(state)) unexpected.push(`${run.id} (${run.kind}) ended ${state}: ${view?.error_type} ${view?.error_message}`);
  }
  const pad = (text: string, width: number): string => text.padStart(width);
  const header = `${'kind'.padEnd(10)}${states.map((s) => pad(s, 10)).join('')}${pad('total', 8)}`;
  const lines = [header, '-'.repeat(header.length)];
  const totals = new Map<string, number>();
  for (const kind of KINDS) {
    const row = rows.get(kind.name) ?? new Map<string, number>();
    let sum = 0;
    for (const s of states) {
      sum += row.get(s) ?? 0;
      totals.set(s, (totals.get(s) ?? 0) + (row.get(s) ?? 0));
    }
    lines.push(`${kind.name.padEnd(10)}${states.map((s) => pad(String(row.get(s) ?? 0), 10)).join('')}${pad(String(sum), 8)}`);
  }
  const total = [...totals.values()].reduce((a, b) => a + b, 0);
  lines.push('-'.repeat(header.length));
  lines.push(`${'all'.padEnd(10)}${states.map((s) => pad(String(totals.get(s) ?? 0), 10)).join('')}${pad(String(total), 8)}`);
  const byQueue = QUEUES.map((q) => `${q} ${submitted.filter((r) => r.queue === q).length}`).join(', ');
  process.stdout.write(`\n${lines.join('\n')}\n\n`);
  process.stdout.write(
    [
      `submitted            ${submitted.length} (${byQueue}); refused submissions ${facts.submitErrors}`,
      `terminal             ${total - (totals.get('other') ?? 0)}  (submitted = Σ terminal: ${submitted.length === total - (totals.get('other') ?? 0) ? 'yes' : 'NO'})`,
      `retried (attempts>1) ${retried}`,
      `worker SIGKILLs      ${facts.kills}; server restarts ${facts.serverRestarts}`,
      `unexpected outcomes  ${unexpected.length} (a run of a kind ending in a state its kind should not reach, other than lost)`,
      `duration             ${facts.duration.toFixed(0)} s on ${cpus().length} cores, Node ${process.version}`,
      `problems             ${facts.problems.length}`,
    ].join('\n') + '\n',
  );
  for (const line of unexpected.slice(0, 20)) process.stdout.write(`  unexpected: ${line}\n`);
  for (const line of facts.problems.slice(0, 50)) process.stdout.write(`  PROBLEM: ${line}\n`);
  process.stdout.write(facts.problems.length === 0 ? '\nSOAK OK: no run lost or duplicated\n' : '\nSOAK FAILED\n');
}

process.exitCode = await main().catch((error: unknown) => {
  process.stderr.write(`soak crashed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  return 2;
});
