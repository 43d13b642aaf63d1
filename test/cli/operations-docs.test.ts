/**
 * Issue 12, items 1 and 7: the supervisor commands of docs/operations.md,
 * read from the doc and run exactly as written (with `/opt/lanes` replaced by
 * this clone), then sent what the supervisor sends on a stop, with runs in
 * flight. Each must drain: every run succeeds, the process exits 0.
 */
import test from 'ava';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { descendants, getRun, workerWithRunsInFlight } from '../reliability/process-cluster.ts';

const REPO = fileURLToPath(new URL('../../', import.meta.url)).replace(/\/$/, '');
const OPERATIONS = readFileSync(new URL('../../docs/operations.md', import.meta.url), 'utf8');

/** The documented command line, `/opt/lanes` mapped to this clone; it must end in `worker`. */
function documented(words: string[]): string[] {
  const mapped = words.map((word) => word.replaceAll('/opt/lanes', REPO));
  if (mapped.at(-1) !== 'worker') throw new Error(`the documented command does not end in "worker": ${words.join(' ')}`);
  return mapped.slice(0, -1);
}

function systemdExecStart(): string[] {
  const line = /^ExecStart=(.+)$/m.exec(OPERATIONS)?.[1];
  if (line === undefined) throw new Error('docs/operations.md has no ExecStart line');
  return documented(line.trim().split(/\s+/));
}

function kubernetesCommand(): string[] {
  const list = /^\s+command: (\[.+\])$/m.exec(OPERATIONS)?.[1];
  if (list === undefined) throw new Error('docs/operations.md has no container command');
  return documented(JSON.parse(list) as string[]);
}

test('the systemd ExecStart line runs on a fresh clone and drains on systemctl stop (SIGTERM to every process of the unit)', async (t) => {
  const command = systemdExecStart();
  t.true(existsSync(command[0]!), `${command[0]} exists after npm ci`);
  const { server, worker, ids } = await workerWithRunsInFlight(t, { command });
  // KillMode=mixed signals the main process; the default control-group signals every process: do the latter, it covers both.
  const tree = [worker.pid, ...descendants(worker.pid)];
  t.true(tree.length > 1, 'the worker has engine children');
  for (const pid of tree) process.kill(pid, 'SIGTERM');
  t.deepEqual(await worker.exited, { code: 0, signal: null });
  for (const id of ids) t.is((await getRun(server, id)).state, 'success', `run ${id} finished during the drain`);
});

test('the Kubernetes container command, as PID 1 gets SIGTERM alone, drains its runs', async (t) => {
  const command = kubernetesCommand();
  t.true(existsSync(command[0]!), `${command[0]} exists after npm ci`);
  t.false(command.some((word) => /(^|\/)np[mx]$/.test(word)), 'no npm or npx between the runtime and the worker');
  const { server, worker, ids } = await workerWithRunsInFlight(t, { command });
  process.kill(worker.pid, 'SIGTERM');
  t.deepEqual(await worker.exited, { code: 0, signal: null });
  for (const id of ids) t.is((await getRun(server, id)).state, 'success', `run ${id} finished during the drain`);
});
