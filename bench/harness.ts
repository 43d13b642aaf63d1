/**
 * Starts the real `lanes server` and `lanes worker` binaries as child
 * processes on loopback, for benchmarks and the soak script. Nothing is
 * mocked: runs go through the JSON API, the Phoenix socket and the engine.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { firstFreePort } from '../src/cli/free-port.ts';
import { LanesApiClient } from '../src/client/lanes-api-client.ts';

const LANES_BIN = fileURLToPath(new URL('../bin/lanes.js', import.meta.url));

export interface ManagedProcess {
  name: string;
  child: ChildProcess;
  pid: number;
  exited: Promise<number | null>;
  /** SIGTERM, then SIGKILL after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
  kill(): Promise<void>;
}

function launch(name: string, args: string[], env: Record<string, string>, verbose: boolean, bin = LANES_BIN): ManagedProcess {
  const child = spawn(process.execPath, [bin, ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', verbose ? 'inherit' : 'ignore', 'inherit'],
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const stop = async (graceMs = 10_000) => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(timer);
  };
  const kill = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  };
  return { name, child, pid: child.pid ?? -1, exited, stop, kill };
}

async function waitReady(url: string, proc: ManagedProcess, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let gone = false;
  void proc.exited.then(() => (gone = true));
  while (Date.now() < deadline) {
    if (gone) throw new Error(`${proc.name} exited before it was ready`);
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(1000) });
      if (response.ok) return;
    } catch {
      // not up yet
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`${proc.name} was not ready at ${url} within ${timeoutMs} ms`);
}

export interface Cluster {
  serverUrl: string;
  socketUrl: string;
  secret: string;
  client: LanesApiClient;
  server: ManagedProcess;
  workers: ManagedProcess[];
  dbPath: string;
  startWorker(options: WorkerOptions): Promise<ManagedProcess>;
  restartServer(): Promise<void>;
  /** Stops every worker, then the server, and removes the temp dir. */
  close(): Promise<void>;
}

export interface WorkerOptions {
  workloops: string;
  /** Another checkout's `bin/lanes.js`, to measure an older worker beside this one (`BENCH_BASELINE`). */
  bin?: string;
  env?: Record<string, string>;
  extraArgs?: string[];
}

export interface ClusterOptions {
  /** Shared adaptor repo, so installs are done once across trials. */
  repoDir: string;
  verbose?: boolean;
  serverEnv?: Record<string, string>;
  /** Another checkout's `bin/lanes.js` to run the server from (`BENCH_BASELINE_SERVER`); default this one. */
  serverBin?: string;
}

export async function startCluster(options: ClusterOptions): Promise<Cluster> {
  const dir = mkdtempSync(join(tmpdir(), 'lanes-bench-'));
  const dbPath = join(dir, 'lanes.db');
  const secret = randomBytes(16).toString('hex');
  const port = await firstFreePort(4100 + Math.floor(Math.random() * 2000));
  const serverUrl = `http://127.0.0.1:${port}`;
  const socketUrl = `ws://127.0.0.1:${port}/worker`;
  const verbose = options.verbose ?? false;
  const serverArgs = ['server', '--port', String(port), '--db', dbPath, '--log', verbose ? 'info' : 'warn'];
  const apiToken = randomBytes(16).toString('hex');
  const serverEnv = { WORKER_SECRET: secret, LANES_API_TOKEN: apiToken, ...(options.serverEnv ?? {}) };

  let server = launch('server', serverArgs, serverEnv, verbose, options.serverBin);
  try {
    await waitReady(`${serverUrl}/readyz`, server);
  } catch (error) {
    // A server that never got ready on a loaded machine must not outlive the bench and skew later figures.
    await server.kill();
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }

  const workers: ManagedProcess[] = [];
  const cluster: Cluster = {
    serverUrl,
    socketUrl,
    secret,
    dbPath,
    client: new LanesApiClient(serverUrl, { apiToken }),
    get server() {
      return server;
    },
    workers,
    async startWorker(worker: WorkerOptions) {
      const healthPort = await firstFreePort(6100 + Math.floor(Math.random() * 2000));
      const proc = launch(
        `worker ${workers.length + 1}`,
        [
          'worker', '--lightning', socketUrl, '--workloops', worker.workloops, '--port', String(healthPort),
          '--repo-dir', options.repoDir, '--log', verbose ? 'info' : 'warn', '--backoff', '0.2/2',
          ...(worker.extraArgs ?? []),
        ],
        { WORKER_SECRET: secret, ...(worker.env ?? {}) },
        verbose,
        worker.bin,
      );
      // Pushed first, so that close() stops it even when it never gets ready.
      workers.push(proc);
      await waitReady(`http://127.0.0.1:${healthPort}/readyz`, proc);
      return proc;
    },
    async restartServer() {
      await server.stop();
      server = launch('server', serverArgs, serverEnv, verbose, options.serverBin);
      await waitReady(`${serverUrl}/readyz`, server);
    },
    async close() {
      await Promise.all(workers.map((worker) => worker.stop()));
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return cluster;
}
