/**
 * Helpers for the reliability tests that need real `lanes worker` processes
 * (SIGKILL, SIGTERM): an adaptor repo with the local fixture adaptor already
 * installed (so no worker ever reaches for a registry), a worker process
 * spawned on the pinned Node with JSON logs read from its stdout, its engine
 * children found through /proc, and run views read over the JSON API.
 *
 * Everything a helper starts is stopped in `t.teardown`.
 */
import type { ExecutionContext } from 'ava';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { AdaptorRepo } from '../../src/runtime/adaptor-repo.ts';
import type { LanesServer } from '../../src/server/index.ts';
import { tempDir } from '../engine/helpers.ts';
import { TEST_SECRET, api, startServer, submitRun, testLogger, waitFor } from '../server/helpers.ts';

const LANES_BIN = fileURLToPath(new URL('../../bin/lanes.js', import.meta.url));
export const FIXTURE_DIR = fileURLToPath(new URL('../fixtures/adaptor/', import.meta.url));
/** Pinned version: a worker finds it installed and never runs `npm view`. */
export const FIXTURE = '@openfn/language-lanesfixture@1.0.0';

export const TERMINAL_STATES: readonly string[] = ['success', 'failed', 'crashed', 'killed', 'cancelled', 'exception', 'lost'];

/** A temp adaptor repo with the fixture adaptor installed; removed at teardown. */
export async function prepareAdaptorRepo(t: ExecutionContext): Promise<string> {
  const repoDir = await tempDir(t, 'lanes-reliability-repo-');
  const repo = await AdaptorRepo.create({ repoDir, logger: testLogger(), localAdaptors: { '@openfn/language-lanesfixture': FIXTURE_DIR } });
  await repo.resolve(FIXTURE);
  return repoDir;
}

/** A one-job plan on the fixture adaptor. */
export function fixturePlan(body: string, options?: Record<string, unknown>): Record<string, unknown> {
  return {
    triggers: [{ id: 'trigger', type: 'webhook' }],
    jobs: [{ id: 'job-1', body, adaptor: FIXTURE }],
    edges: [{ id: 'edge-1', source_trigger_id: 'trigger', target_job_id: 'job-1', condition: 'always' }],
    ...(options === undefined ? {} : { options }),
  };
}

export interface LogLine {
  msg?: string;
  [field: string]: unknown;
}

export interface WorkerProcess {
  readonly child: ChildProcess;
  /** The pid of the real node process (spawned directly, never through npx). */
  readonly pid: number;
  readonly lines: readonly LogLine[];
  /** The same lines as printed (JSON text), for checks parsing would hide, such as a key written twice. */
  readonly rawLines: readonly string[];
  /** Resolves with the exit code (null when killed by a signal) and the signal. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Resolves with the first log line whose `msg` is `msg` (and that passes `match`). */
  waitForLog(msg: string, match?: (line: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  /** The worker's id, read from its startup log line. */
  workerId(): Promise<string>;
  /** What it wrote on stderr so far. */
  stderr(): string;
}

export interface SpawnWorkerOptions {
  lightningUrl: string;
  workloops: string;
  repoDir: string;
  extraArgs?: readonly string[];
  /**
   * Started as the leader of its own process group (pgid = pid), as a shell
   * starts a job or a container runtime starts PID 1, so a test can signal the
   * whole group with `process.kill(-pid, signal)`.
   */
  detached?: boolean;
  /** The command line before `worker`; defaults to the pinned Node on bin/lanes.js. */
  command?: readonly string[];
}

/** Spawns `lanes worker` on the pinned Node (`process.execPath`); SIGKILLed at teardown if still alive. */
export function spawnWorker(t: ExecutionContext, options: SpawnWorkerOptions): WorkerProcess {
  const [program, ...prefix] = options.command ?? [process.execPath, LANES_BIN];
  const child = spawn(
    program!,
    [
      ...prefix, 'worker', '--lightning', options.lightningUrl, '--workloops', options.workloops, '--port', '0',
      '--repo-dir', options.repoDir, '--log', 'info', '--log-format', 'json', '--backoff', '0.05/0.5',
      ...(options.extraArgs ?? []),
    ],
    { env: { ...process.env, WORKER_SECRET: TEST_SECRET }, stdio: ['ignore', 'pipe', 'pipe'], detached: options.detached === true },
  );
  const lines: LogLine[] = [];
  const rawLines: string[] = [];
  const listeners = new Set<(line: LogLine) => void>();
  createInterface({ input: child.stdout! }).on('line', (text) => {
    rawLines.push(text);
    let line: LogLine;
    try {
      line = JSON.parse(text) as LogLine;
    } catch {
      line = { msg: text };
    }
    lines.push(line);
    for (const listener of listeners) listener(line);
  });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('exit', (code, signal) => resolve({ code, signal }));
  });
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
    // A detached worker leads its group: anything of it still alive there goes too.
    if (options.detached === true) {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // The group is already empty.
      }
    }
    if (process.env['LANES_TEST_LOG'] !== undefined && stderr !== '') t.log(stderr);
  });

  const waitForLog = (msg: string, match: (line: LogLine) => boolean = () => true, timeoutMs = 60_000): Promise<LogLine> => {
    const found = lines.find((line) => line.msg === msg && match(line));
    if (found !== undefined) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        listeners.delete(listener);
        reject(new Error(`worker ${child.pid} logged no "${msg}" within ${timeoutMs} ms; stderr: ${stderr.slice(0, 2000)}`));
      }, timeoutMs);
      const listener = (line: LogLine): void => {
        if (line.msg !== msg || !match(line)) return;
        clearTimeout(timer);
        listeners.delete(listener);
        resolve(line);
      };
      listeners.add(listener);
      void exited.then(() => {
        if (!listeners.has(listener)) return;
        clearTimeout(timer);
        listeners.delete(listener);
        reject(new Error(`worker ${child.pid} exited before logging "${msg}"; stderr: ${stderr.slice(0, 2000)}`));
      });
    });
  };

  return {
    child,
    pid: child.pid ?? -1,
    lines,
    rawLines,
    exited,
    waitForLog,
    workerId: async () => String((await waitForLog('worker started'))['workerId']),
    stderr: () => stderr,
  };
}

/** Pids of every live descendant of `pid` (Linux /proc). */
export function descendants(pid: number): number[] {
  const parents = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // The command name is in parentheses and may hold spaces: split after the last ')'.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (fields[0] === 'Z') continue;
      parents.set(Number(entry), Number(fields[1]));
    } catch {
      // The process went away while we listed.
    }
  }
  const found: number[] = [];
  const walk = (parent: number): void => {
    for (const [child, ppid] of parents) {
      if (ppid === parent) {
        found.push(child);
        walk(child);
      }
    }
  };
  walk(pid);
  return found;
}

/** Whether a pid is alive and not a zombie. */
export function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0] !== 'Z';
  } catch {
    return false;
  }
}

export interface AttemptView {
  attempt: number;
  worker: string | null;
  state: string;
  error_type: string | null;
  error_message: string | null;
  claimed_at: string | null;
  started_at: string | null;
  finished_at: string | null;
}

export interface RunView {
  id: string;
  queue: string;
  state: string;
  reason: string | null;
  error_type: string | null;
  error_message: string | null;
  attempts: number;
  worker: string | null;
  available_at: string | null;
  /** Why an available run waits (no connected lane could hold its memory), when it does. */
  waiting_reason?: string | null;
  steps: Array<{ id: string; job_id: string; reason: string | null }>;
  history: AttemptView[];
}

export async function getRun(server: LanesServer, id: string): Promise<RunView> {
  const { status, body } = await api<RunView>(server, 'GET', `/api/runs/${id}`);
  if (status !== 200) throw new Error(`GET /api/runs/${id}: ${status}`);
  return body;
}

/**
 * Polls the runs' views until `done` holds for every one, and returns them.
 * On timeout the error carries what tells a stuck run's cause: each run's
 * row (queue, state, worker, attempts, when it may be claimed, why it waits,
 * its attempts' history) and the server's view of its queues and of the
 * workers' lanes and the runs each holds.
 */
export async function waitForRuns(
  server: LanesServer,
  ids: readonly string[],
  done: (view: RunView) => boolean,
  options: { timeoutMs: number; message: string },
): Promise<RunView[]> {
  let views: RunView[] = [];
  try {
    await waitFor(
      async () => {
        views = await Promise.all(ids.map((id) => getRun(server, id)));
        return views.every(done);
      },
      { timeoutMs: options.timeoutMs, intervalMs: 50, message: options.message },
    );
  } catch (error) {
    const rows = views.map(({ id, queue, state, worker, attempts, available_at, waiting_reason, history }) => ({ id, queue, state, worker, attempts, available_at, waiting_reason, history }));
    const [queues, workers] = await Promise.all([api(server, 'GET', '/api/queues'), api(server, 'GET', '/api/workers')]);
    throw new Error(`${String(error instanceof Error ? error.message : error)}\nruns: ${JSON.stringify(rows)}\nqueues: ${JSON.stringify(queues.body)}\nworkers: ${JSON.stringify(workers.body)}`);
  }
  return views;
}

/** Polls until every run is in a terminal state; returns their views. */
export function waitAllTerminal(server: LanesServer, ids: readonly string[], timeoutMs = 40_000): Promise<RunView[]> {
  return waitForRuns(server, ids, (view) => TERMINAL_STATES.includes(view.state), { timeoutMs, message: 'runs to end' });
}

/** A job that sleeps `state.holdMs` from its own start, however late it starts on a loaded machine. */
export const HOLD_FOR = 'fn(state => new Promise(resolve => setTimeout(() => resolve(state), state.holdMs)))';

export interface RunsInFlight {
  server: LanesServer;
  worker: WorkerProcess;
  workerId: string;
  ids: string[];
}

/**
 * A server, and a worker started as the leader of its own process group (as
 * a shell starts a job, a service manager a unit, a container runtime PID 1)
 * with `runs` held runs all `started` on it: what a signal test needs.
 */
export async function workerWithRunsInFlight(
  t: ExecutionContext,
  options: { command?: readonly string[]; runs?: number; holdMs?: number; extraArgs?: readonly string[] } = {},
): Promise<RunsInFlight> {
  const runs = options.runs ?? 4;
  const server = await startServer(t, { leaseMs: 60_000, heartbeatIntervalMs: 500 });
  const repoDir = await prepareAdaptorRepo(t);
  const worker = spawnWorker(t, {
    lightningUrl: server.workerUrl,
    workloops: `manual>*:${runs}`,
    repoDir,
    detached: true,
    ...(options.command === undefined ? {} : { command: options.command }),
    ...(options.extraArgs === undefined ? {} : { extraArgs: options.extraArgs }),
  });
  const workerId = await worker.workerId();
  await worker.waitForLog('joined worker:queue');
  const ids = await Promise.all(Array.from({ length: runs }, () => submitRun(server, { queue: 'manual', plan: fixturePlan(HOLD_FOR), input: { holdMs: options.holdMs ?? 6_000 } })));
  // All seen `started` at once: the signal that follows finds every one of them in flight.
  await waitForRuns(server, ids, (run) => run.state === 'started' && run.worker === workerId, { timeoutMs: 30_000, message: `all ${runs} runs started` });
  return { server, worker, workerId, ids };
}
