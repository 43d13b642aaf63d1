/**
 * `lanes server` as a real process for the replica tests: spawned on the
 * pinned Node over a database (a `postgres://` URL for replicas), on port 0,
 * read from its JSON logs, and SIGKILLed as a crashed machine would lose it.
 * Its JSON API is called with the test token. Everything is stopped in
 * `t.teardown`.
 */
import type { ExecutionContext } from 'ava';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { TEST_API_TOKEN, TEST_SECRET } from '../server/helpers.ts';

const LANES_BIN = fileURLToPath(new URL('../../bin/lanes.js', import.meta.url));

export interface ServerProcess {
  /** `http://127.0.0.1:PORT` */
  url: string;
  port: number;
  /** `ws://127.0.0.1:PORT/worker` */
  workerUrl: string;
  /** SIGKILL: no drain, no goodbye to its sockets; resolves once it exited. */
  kill(): Promise<void>;
}

/** `lanes server` on port 0 over `db`; resolves once it logs "listening". SIGKILLed at teardown. */
export async function spawnServer(t: ExecutionContext, db: string): Promise<ServerProcess> {
  const child = spawn(process.execPath, [LANES_BIN, 'server', '--port', '0', '--db', db, '--log', 'info', '--log-format', 'json'], {
    env: { ...process.env, WORKER_SECRET: TEST_SECRET, LANES_API_TOKEN: TEST_API_TOKEN },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = once(child, 'exit');
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  });
  const port = await new Promise<number>((resolve, reject) => {
    createInterface({ input: child.stdout }).on('line', (text) => {
      if (!text.includes('"msg":"listening"')) return;
      resolve(Number((JSON.parse(text) as { port: number }).port));
    });
    void exited.then(() => reject(new Error(`server exited before listening: ${stderr.slice(0, 2000)}`)));
  });
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    workerUrl: `ws://127.0.0.1:${port}/worker`,
    kill: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}

/** One JSON API call; throws on a status of 300 or more. */
export async function call<T>(server: ServerProcess, method: string, path: string, body?: unknown): Promise<T> {
  const response = await fetch(`${server.url}${path}`, {
    method,
    headers: { 'content-type': 'application/json', authorization: `Bearer ${TEST_API_TOKEN}` },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  if (response.status >= 300) throw new Error(`${method} ${path}: ${response.status} ${await response.text()}`);
  return (await response.json()) as T;
}

/** A run as `GET /api/runs` lists it (the fields these tests read). */
export interface RunRow {
  id: string;
  state: string;
  attempts: number;
  max_attempts: number;
  worker: string | null;
  claimed_at: string | null;
  started_at: string | null;
  error_type: string | null;
}

/** Every run, walking the keyset pages. */
export async function allRuns(server: ServerProcess): Promise<RunRow[]> {
  const runs: RunRow[] = [];
  let cursor: string | undefined;
  for (;;) {
    const page = await call<{ runs: RunRow[]; next_cursor?: string }>(server, 'GET', `/api/runs?limit=1000${cursor ? `&before=${cursor}` : ''}`);
    runs.push(...page.runs);
    cursor = page.next_cursor;
    if (cursor === undefined) return runs;
  }
}
