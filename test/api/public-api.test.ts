/**
 * The package's public API (docs/api.md), used the way an embedder uses it:
 * imported by its name, 'lanes', through package.json `exports`.
 */
import test from 'ava';
import { execFile } from 'node:child_process';
import { copyFile, mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError, createServer, createWorker, ERROR_TYPES, parseWorkloops, WorkloopsError } from 'lanes';
import type { ClaimReply, RunPlan, Worker } from 'lanes';
import { tempDir } from '../engine/helpers.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const FIXTURE_DIR = fileURLToPath(new URL('../fixtures/adaptor/', import.meta.url));

test('a program in its own project imports lanes by name, runs a server and a worker, and a run succeeds', async (t) => {
  t.timeout(120_000);
  const project = await tempDir(t, 'lanes-embedder-');
  // What `npm install ../lanes` leaves: node_modules/lanes is a link to the package.
  await mkdir(join(project, 'node_modules'));
  await symlink(ROOT, join(project, 'node_modules', 'lanes'), 'dir');
  await writeFile(join(project, 'package.json'), JSON.stringify({ name: 'embedder', type: 'module', private: true }));
  await copyFile(fileURLToPath(new URL('./embed.mjs', import.meta.url)), join(project, 'embed.mjs'));
  const repoDir = await tempDir(t, 'lanes-embedder-repo-');
  const { stdout, stderr } = await new Promise<{ stdout: string; stderr: string }>((resolve, reject) => {
    execFile(process.execPath, ['embed.mjs', repoDir, FIXTURE_DIR], { cwd: project, timeout: 110_000 }, (error, out, err) =>
      error ? reject(new Error(`embed.mjs failed: ${error.message}\n${err}`)) : resolve({ stdout: out, stderr: err }),
    );
  });
  t.is(stderr, '', 'the embedder prints nothing on stderr (the default logger is silent)');
  t.deepEqual(JSON.parse(stdout), {
    state: 'success',
    terminal: true,
    finalState: { data: { doubled: 42 } },
    lanes: [['fast_lane'], ['manual', '*']],
    warnings: [],
    workerState: 'stopped',
    serverState: 'stopped',
  });
});

test('only the public entry is exported: a deep import of the package is refused', async (t) => {
  const error = await t.throwsAsync(import('lanes/src/worker/worker.ts' as string));
  t.is((error as NodeJS.ErrnoException).code, 'ERR_PACKAGE_PATH_NOT_EXPORTED');
});

test('createWorker validates its flags as the CLI does, naming the flag and the value', async (t) => {
  const base = { secret: 's', port: 0 };
  const bad = await t.throwsAsync(createWorker({ flags: { ...base, workloops: 'fast_lane:0' } }), { instanceOf: ConfigError });
  t.regex(bad?.message ?? '', /^invalid --workloops\/WORKER_WORKLOOPS \(flag --workloops\): "fast_lane:0" lane "0"/);
  t.throws(() => parseWorkloops('fast_lane:0'), { instanceOf: WorkloopsError });
  const unknown = await t.throwsAsync(createWorker({ flags: { ...base, workloop: 'fast_lane:1' } }), { instanceOf: ConfigError });
  t.is(unknown?.message, 'invalid --workloop (flag --workloop): "fast_lane:1" is not a lanes worker option');
  const negative = await t.throwsAsync(createWorker({ flags: { ...base, 'run-memory': -5 } }), { instanceOf: ConfigError });
  t.regex(negative?.message ?? '', /--run-memory.*"-5"/);
  const missing = await t.throwsAsync(createWorker({ flags: { port: 0 } }), { instanceOf: ConfigError });
  t.regex(missing?.message ?? '', /--secret\/WORKER_SECRET/);
});

test('createWorker reads WORKER_* variables only from the env it is given, and creates a worker that is not yet started', async (t) => {
  const executor = { execute: () => Promise.reject(new Error('no runs in this test')) };
  const { worker, warnings } = await createWorker({
    flags: { port: 0, lightning: 'ws://127.0.0.1:1/worker' },
    env: { WORKER_SECRET: 'from-env', WORKER_WORKLOOPS: 'a:1 a:2' },
    executor,
  });
  const created: Worker = worker;
  t.is(created.state, 'created');
  t.deepEqual(worker.lanes.map((lane) => lane.id), ['a:1', 'a:2']);
  t.deepEqual(warnings, ['two lanes have the same queue chain "a"']);
});

test('createServer needs no logger and exposes the protocol types and constants', async (t) => {
  const server = await createServer({ port: 0, dbPath: ':memory:', secret: 's' });
  t.teardown(() => server.stop());
  await server.start();
  t.regex(server.workerUrl, /^ws:\/\/127\.0\.0\.1:\d+\/worker$/);
  t.deepEqual(parseWorkloops('fast_lane:1').lanes, [{ queues: ['fast_lane'], capacity: 1, id: 'fast_lane:1' }]);
  t.is(ERROR_TYPES.oom, 'OOMError');
  const reply: ClaimReply = { runs: [] };
  const plan: Pick<RunPlan, 'jobs'> = { jobs: [] };
  t.deepEqual([reply.runs, plan.jobs], [[], []]);
});
