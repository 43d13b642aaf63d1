/**
 * `lanes dev` (what `npm start` runs): a server on a local database and one
 * worker with lanes `fast_lane:1 manual>*:4`, as child processes sharing a
 * generated secret; the examples are submitted once and progress is printed
 * as runs finish. Ctrl-C drains the worker, then stops the server; a second
 * Ctrl-C kills both.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, readdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Argv } from 'yargs';
import { LanesApiClient } from '../../client/lanes-api-client.ts';
import type { RunRecord, SubmitRunBody } from '../../client/lanes-api-client.ts';
import { isTerminalState } from '../../protocol/reasons.ts';
import type { CliContext } from '../cli-context.ts';
import { EXIT_FAILURE, EXIT_OK } from '../exit-codes.ts';
import { canBind, firstFreePort } from '../free-port.ts';
import { readWorkflow } from '../read-workflow.ts';

export const DEV_WORKLOOPS = 'fast_lane:1 manual>*:4';
const LANES_BIN = fileURLToPath(new URL('../../../bin/lanes.js', import.meta.url));
const EXAMPLES_DIR = fileURLToPath(new URL('../../../examples/', import.meta.url));

export const command = 'dev';
export const describe = 'Run a server and a worker together, submit the examples and show runs as they finish';

export function builder<T>(yargs: Argv<T>) {
  return yargs
    .option('db', { type: 'string', describe: 'SQLite database of the dev server [default ./.lanes/dev.db]' })
    .option('port', { type: 'string', describe: 'Server port [default 4000, or the first free one after it]' })
    .option('examples', { type: 'boolean', default: true, describe: 'Submit the workflows in examples/ once started (--no-examples to skip)' });
}

export async function handler(argv: Record<string, unknown>, ctx: CliContext): Promise<number> {
  const dbPath = resolve(ctx.cwd, typeof argv['db'] === 'string' ? argv['db'] : join('.lanes', 'dev.db'));
  await mkdir(resolve(dbPath, '..'), { recursive: true });
  const askedPort = typeof argv['port'] === 'string' ? Number(argv['port']) : null;
  if (askedPort !== null && !(await canBind(askedPort, '127.0.0.1'))) {
    // Checked here: another server on that port would answer our readiness probe and take our worker.
    ctx.err(`lanes dev: cannot listen on 127.0.0.1:${askedPort}: EADDRINUSE (the port is in use)`);
    return EXIT_FAILURE;
  }
  const serverPort = askedPort ?? (await firstFreePort(4000));
  // The worker's health server listens on every interface: check the port there.
  const healthPort = await firstFreePort(2222, '0.0.0.0');
  const secret = randomBytes(24).toString('hex');
  // The API token of this session: LANES_API_TOKEN when set (so a shell that exports it keeps working), else a new one.
  const apiToken = ctx.env['LANES_API_TOKEN']?.split(',')[0]?.trim() || randomBytes(24).toString('hex');
  const devStartedAt = Date.now();
  const serverUrl = `http://127.0.0.1:${serverPort}`;
  const childEnv: Record<string, string | undefined> = { ...ctx.env, WORKER_SECRET: secret, LANES_LOG_FORMAT: 'pretty', WORKER_LOG_FORMAT: 'pretty' };
  delete childEnv['LANES_API_TOKEN'];
  delete childEnv['LANES_API_TOKEN_FILE'];

  const children: ChildProcess[] = [];
  const progressDone = new AbortController();
  let progress: Promise<void> | undefined;
  // Prints runs that finished since the last look; set once the examples are submitted.
  let printFinished = async (): Promise<void> => {};
  const start = (name: string, args: string[], env: Record<string, string | undefined> = childEnv) => {
    // Own process group: a Ctrl-C at the terminal reaches only `dev`, which
    // then drains the worker before the server. Were the children in our
    // group, the worker would get SIGINT and then our SIGTERM, a second
    // signal, and would skip its drain.
    // The IPC channel is only a lifeline: if `dev` dies, even by SIGKILL, it closes and the child stops.
    const child = spawn(process.execPath, [LANES_BIN, ...args], { env, stdio: ['ignore', 'inherit', 'inherit', 'ipc'], detached: true });
    children.push(child);
    return { name, child, exited: new Promise<number | null>((done) => child.on('exit', (code) => done(code))) };
  };

  ctx.onExit(() => {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  // Only the server hears of the API token; the worker never needs it.
  const server = start('server', ['server', '--port', String(serverPort), '--db', dbPath, '--log', 'warn'], { ...childEnv, LANES_API_TOKEN: apiToken });
  const client = new LanesApiClient(serverUrl, { apiToken });
  const stopping = new AbortController();
  let signals = 0;
  ctx.onShutdownSignal((count) => {
    signals = count;
    if (count === 1) {
      ctx.out('\nstopping: draining the worker, then the server (Ctrl-C again to force)');
      stopping.abort();
    } else {
      for (const child of children) child.kill('SIGKILL');
    }
  });

  const failed = (what: string) => {
    ctx.err(`lanes dev: ${what}`);
    for (const child of children) child.kill('SIGKILL');
    return EXIT_FAILURE;
  };

  if (!(await waitUntil(`${serverUrl}/readyz`, stopping.signal, server.exited))) {
    if (stopping.signal.aborted) return EXIT_OK;
    // The server said why on stderr, in one line, and chose its exit code (2: configuration, 1: environment).
    if (server.child.exitCode !== null) return server.child.exitCode;
    return failed('the server did not start (see its log above)');
  }
  // The examples' adaptors are installed and kept warm from the start, so the first runs do not wait for npm.
  const examples = argv['examples'] !== false ? (await readdir(EXAMPLES_DIR)).filter((name) => name.endsWith('.json')).sort() : [];
  const bodies = await Promise.all(examples.map((file) => readWorkflow(join(EXAMPLES_DIR, file))));
  const adaptors = [...new Set(bodies.flatMap((body) => adaptorsOf(body.plan)))];
  const worker = start('worker', [
    'worker', '--lightning', `ws://127.0.0.1:${serverPort}/worker`, '--workloops', DEV_WORKLOOPS,
    '--port', String(healthPort), '--log', 'warn', '--backoff', '0.5/5',
    ...(adaptors.length > 0 ? ['--preload-adaptors', adaptors.join(',')] : []),
  ]);
  if (!(await waitUntil(`http://127.0.0.1:${healthPort}/readyz`, stopping.signal, worker.exited))) {
    if (stopping.signal.aborted) return shutdown();
    return failed('the worker did not become ready (see its log above)');
  }

  ctx.out([
    '',
    `  Lanes is running.`,
    `  open     ${dashboardLink(serverUrl, apiToken)}   (the dashboard, signed in)`,
    `  server   ${serverUrl}  (database ${dbPath})`,
    `  worker   lanes ${DEV_WORKLOOPS}   health http://127.0.0.1:${healthPort}/readyz`,
    '',
    `  token    ${apiToken}`,
    `           export LANES_API_TOKEN=${apiToken}   # lanes submit and curl below read it`,
    '',
    `  submit   npx lanes submit examples/hello.json --queue fast_lane --wait --server ${serverUrl}`,
    `  read     curl -H "Authorization: Bearer $LANES_API_TOKEN" ${serverUrl}/api/runs/RUN_ID`,
    `  queues   curl -H "Authorization: Bearer $LANES_API_TOKEN" ${serverUrl}/api/queues`,
    '',
  ].join('\n'));

  for (const [index, file] of examples.entries()) {
    const run = await client.submitRun(bodies[index] as SubmitRunBody);
    ctx.out(`  → submitted ${file} as run ${run.id} to ${run.queue}`);
  }

  // Progress: poll the runs we submitted and anything else that finishes from now on (runs that
  // ended before, in an earlier `dev` on the same database, are not news). It goes on through the
  // drain, so runs that finish while the worker drains are printed too, and ends once the worker is gone.
  const seen = new Set<string>();
  printFinished = async (): Promise<void> => {
    try {
      for (const run of await recentRuns(client)) {
        if (seen.has(run.id) || !isTerminalState(run.state)) continue;
        if (run.finished_at !== null && run.finished_at !== undefined && Date.parse(run.finished_at) < devStartedAt) continue;
        seen.add(run.id);
        const took = run.started_at && run.finished_at ? ` in ${Date.parse(run.finished_at) - Date.parse(run.started_at)} ms` : '';
        const mark = run.state === 'success' ? '✓' : '✗';
        ctx.out(`  ${mark} run ${run.id} (${run.queue}) ${run.state}${took}${run.error_type ? ` ${run.error_type}: ${run.error_message ?? ''}` : ''}`);
      }
    } catch {
      // The server may be restarting or stopping; the exit handlers report that.
    }
  };
  progress = (async () => {
    while (!progressDone.signal.aborted) {
      await printFinished();
      await sleep(500, progressDone.signal);
    }
  })();

  const ended = await Promise.race([
    server.exited.then((code) => `the server exited (code ${code})`),
    worker.exited.then((code) => `the worker exited (code ${code})`),
    new Promise<string>((done) => stopping.signal.addEventListener('abort', () => done(''), { once: true })),
  ]);
  if (ended !== '') {
    progressDone.abort();
    await progress.catch(() => undefined);
    return failed(ended);
  }
  return shutdown();

  async function shutdown(): Promise<number> {
    worker.child.kill('SIGTERM');
    await worker.exited;
    progressDone.abort();
    await progress?.catch(() => undefined);
    // One last look once the worker is gone: a run it finished in the last moments of the
    // drain ended after the loop's previous poll.
    await printFinished();
    server.child.kill('SIGTERM');
    await server.exited;
    ctx.out(signals > 1 ? 'stopped (forced)' : 'stopped');
    return EXIT_OK;
  }
}

/** The adaptors a plan's jobs name (`name@version`). */
function adaptorsOf(plan: unknown): string[] {
  const jobs = typeof plan === 'object' && plan !== null ? (plan as { jobs?: unknown }).jobs : undefined;
  if (!Array.isArray(jobs)) return [];
  return jobs.map((job: unknown) => (typeof job === 'object' && job !== null ? (job as { adaptor?: unknown }).adaptor : undefined)).filter((a): a is string => typeof a === 'string');
}

async function recentRuns(client: LanesApiClient): Promise<RunRecord[]> {
  const listed = await client.listRuns({ limit: '50' });
  if (Array.isArray(listed)) return listed as RunRecord[];
  if (typeof listed === 'object' && listed !== null && Array.isArray((listed as { runs?: unknown }).runs)) {
    return (listed as { runs: RunRecord[] }).runs;
  }
  return [];
}

/** Polls `url` until it answers 200; false when `signal` aborts or the process exits first. */
async function waitUntil(url: string, signal: AbortSignal, exited: Promise<unknown>): Promise<boolean> {
  let gone = false;
  void exited.then(() => (gone = true));
  const deadline = Date.now() + 120_000;
  while (!signal.aborted && !gone && Date.now() < deadline) {
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(1000) });
      if (response.ok) return true;
    } catch {
      // Not listening yet.
    }
    await sleep(100, signal);
  }
  return false;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((done) => {
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', () => {
      clearTimeout(timer);
      done();
    }, { once: true });
  });
}

/**
 * The dashboard's address with the token in the fragment: the page stores it
 * for the tab and takes it out of the address bar. A fragment is never sent
 * to the server, so the token stays out of its logs and of any proxy's.
 */
export function dashboardLink(serverUrl: string, apiToken: string): string {
  return `${serverUrl}/#token=${encodeURIComponent(apiToken)}`;
}
