/**
 * The pool: concurrency equals the pool size, dead children are replaced,
 * children get only allow-listed environment variables, every run gets a
 * fresh thread and adaptor instance.
 */
import { readdir, readFile } from 'node:fs/promises';
import test from 'ava';
import { job, plan, request, startEngine } from './helpers.ts';

/** Resolves when `check` holds, polling; fails after the deadline. */
async function until(check: () => boolean, deadlineMs = 10_000): Promise<void> {
  const end = Date.now() + deadlineMs;
  while (!check()) {
    if (Date.now() > end) throw new Error('condition not met before the deadline');
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('runs execute concurrently up to the pool size, then queue', async (t) => {
  const engine = await startEngine(t, { poolSize: 2 });
  const asked: string[] = [];
  let release: () => void = () => undefined;
  const barrier = new Promise<void>((r) => (release = r));
  const make = (name: string) =>
    request(plan([job('a', 'fn(s => ({ ...s, data: { who: s.configuration.who } }))', { credential_id: name })]), {
      fetchCredential: async (id) => {
        asked.push(id);
        await barrier;
        return { who: id };
      },
    }).request;
  const runs = [engine.execute(make('one')), engine.execute(make('two')), engine.execute(make('three'))];
  // Two runs hold their children while waiting on the barrier; the third must wait for a child.
  await until(() => asked.length === 2).catch((e) => { t.log(asked, JSON.stringify(engine.stats())); throw e; });
  t.is(engine.stats().children.filter((c) => c.state === 'busy').length, 2);
  t.false(asked.includes('three'));
  release();
  const outcomes = await Promise.all(runs);
  t.deepEqual(
    outcomes.map((o) => o.reason),
    ['success', 'success', 'success'],
  );
  t.deepEqual(outcomes.map((o) => (o.finalState as { data: { who: string } }).data.who).sort(), ['one', 'three', 'two']);
});

test('a child killed from outside crashes its run and is replaced', async (t) => {
  const engine = await startEngine(t, { poolSize: 1 });
  const [pid] = engine.childPids();
  const { request: req } = request(plan([job('a', 'fn(() => new Promise(() => {}))')]), {
    onEvent: (e) => {
      if (e.type === 'step-start' && pid) process.kill(pid, 'SIGKILL');
    },
  });
  const outcome = await engine.execute(req);
  t.is(outcome.reason, 'crash');
  t.is(outcome.errorType, 'ProcessCrashError');
  t.regex(outcome.errorMessage ?? '', /SIGKILL/);
  const next = await engine.execute(request(plan([job('a', 'fn(s => ({ ...s, data: 1 }))')])).request);
  t.is(next.reason, 'success');
  t.is(engine.childPids().length, 1);
  t.not(engine.childPids()[0], pid);
});

test('job code sees only allow-listed environment variables', async (t) => {
  const engine = await startEngine(t, {
    env: { PATH: process.env['PATH'], WORKER_SECRET: 'top-secret', WORKER_LIGHTNING_SERVICE_URL: 'ws://x', FOO: 'bar', TZ: 'UTC' },
    envAllowList: ['PATH', 'TZ', 'WORKER_SECRET'],
    childEnv: { LANES_TEST_EXTRA: 'no', EXTRA: 'yes' },
  });
  const secret = await engine.execute(request(plan([job('a', 'readEnv("WORKER_SECRET")')])).request);
  t.is(secret.reason, 'success');
  const data = (secret.finalState as { data: { env: unknown; envKeys: string[] } }).data;
  t.is(data.env, null, 'WORKER_SECRET is refused even when listed');
  t.false(data.envKeys.includes('FOO'));
  t.false(data.envKeys.some((k) => k.startsWith('WORKER_') || k.startsWith('LANES_')));
  t.true(data.envKeys.includes('TZ'));
  t.true(data.envKeys.includes('EXTRA'));
});

test('every run gets a fresh adaptor module instance', async (t) => {
  const engine = await startEngine(t, { poolSize: 1 });
  const a = await engine.execute(request(plan([job('a', 'instanceInfo()')])).request);
  const b = await engine.execute(request(plan([job('a', 'instanceInfo()')])).request);
  const da = (a.finalState as { data: { instance: string; calls: number } }).data;
  const db = (b.finalState as { data: { instance: string; calls: number } }).data;
  t.is(da.calls, 1);
  t.is(db.calls, 1);
  t.not(da.instance, db.instance);
});

test('edges: on_job_failure and JavaScript conditions choose the path', async (t) => {
  const engine = await startEngine(t);
  const jobs = [
    job('a', 'fn(s => { throw new Error("first failed") })'),
    job('recover', 'fn(s => ({ ...s, data: { recovered: true, go: true } }))'),
    job('skipped', 'fn(s => ({ ...s, data: { skipped: true } }))'),
    job('conditional', 'fn(s => ({ ...s, data: { ...s.data, conditional: true } }))'),
    job('never', 'fn(s => ({ ...s, data: { never: true } }))'),
  ];
  const edges = [
    { id: 'e0', source_trigger_id: 't', target_job_id: 'a', condition: 'always' },
    { id: 'e1', source_job_id: 'a', target_job_id: 'recover', condition: 'on_job_failure' },
    { id: 'e2', source_job_id: 'a', target_job_id: 'skipped', condition: 'on_job_success' },
    { id: 'e3', source_job_id: 'recover', target_job_id: 'conditional', condition: 'state.data.go === true' },
    { id: 'e4', source_job_id: 'recover', target_job_id: 'never', condition: 'state.data.go === false' },
  ];
  const { request: req, events } = request(plan(jobs, edges));
  const outcome = await engine.execute(req);
  const ran = events.flatMap((e) => (e.type === 'step-start' ? [e.jobId] : []));
  t.deepEqual(ran, ['a', 'recover', 'conditional']);
  t.is(outcome.reason, 'success', 'the failed step is not a leaf');
  t.like(outcome.finalState, { data: { recovered: true, conditional: true } });
});

test('disabled edges are not followed', async (t) => {
  const engine = await startEngine(t);
  const edges = [
    { id: 'e0', source_trigger_id: 't', target_job_id: 'a', condition: 'always' },
    { id: 'e1', source_job_id: 'a', target_job_id: 'b', condition: 'always', enabled: false },
  ];
  const { request: req, events } = request(plan([job('a', 'fn(s => s)'), job('b', 'fn(s => s)')], edges));
  await engine.execute(req);
  t.deepEqual(events.flatMap((e) => (e.type === 'step-start' ? [e.jobId] : [])), ['a']);
});

test('payload limits: large output becomes outputTooLarge, long log lines are truncated', async (t) => {
  const engine = await startEngine(t);
  const body = 'fn(s => { console.log("x".repeat(50000)); console.log("short"); return { ...s, data: { big: "y".repeat(50000) } } })';
  const { request: req, events } = request(plan([job('a', body)]), { limits: { payloadLimitMb: 0.01, logPayloadLimitMb: 0.01 } });
  const outcome = await engine.execute(req);
  t.is(outcome.reason, 'success');
  const step = events.find((e) => e.type === 'step-complete');
  t.true(step?.type === 'step-complete' && step.outputTooLarge && step.outputJson === null);
  t.is(outcome.finalState, null);
  const jobLogs = events.flatMap((e) => (e.type === 'log' && e.source === 'JOB' ? [e.message] : []));
  t.regex(String(jobLogs[0]?.[0]), /\[TRUNCATED\]/);
  t.true(String(jobLogs[0]?.[0]).length < 0.01 * 1024 * 1024);
  t.deepEqual(jobLogs[1], ['short']);
});

test('a run with its own smaller memory limit is held to it, even in a warm thread booted for more', async (t) => {
  const engine = await startEngine(t, { runMemoryLimitMb: 256 });
  const body = 'fn(() => { const keep = []; while (true) keep.push(new Array(100000).fill({ x: Math.random() })); })';
  const outcome = await engine.execute(request(plan([job('a', body)]), { limits: { memoryLimitMb: 48 } }).request);
  t.is(outcome.errorType, 'OOMError');
});

/** The nice value of a thread, from /proc (field 19 of its stat). */
async function niceOf(pid: number, tid: number | string = pid): Promise<number> {
  const stat = await readFile(`/proc/${pid}/task/${tid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
}

/** Nice values of a process's `worker_threads` threads (Node names them WorkerThread). */
async function workerThreadNices(pid: number): Promise<number[]> {
  const nices: number[] = [];
  for (const tid of await readdir(`/proc/${pid}/task`)) {
    try {
      if ((await readFile(`/proc/${pid}/task/${tid}/comm`, 'utf8')).trim() === 'WorkerThread') nices.push(await niceOf(pid, tid));
    } catch (error) {
      // A thread that ended since the directory was read (a run's, terminated as its run ended).
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT' && (error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
    }
  }
  return nices;
}

/**
 * The nice values of the child's threads once only the spare is left: the thread of the run
 * before it is terminated as that run ends, and may still be listed for a moment after.
 */
async function spareOnlyNices(pid: number): Promise<number[]> {
  const end = Date.now() + 10_000;
  for (;;) {
    const nices = await workerThreadNices(pid);
    if (nices.length === 1 || Date.now() > end) return nices;
    await new Promise((r) => setTimeout(r, 20));
  }
}

test("urgent runs' threads run at childNice; the child's relay thread keeps the worker's priority", async (t) => {
  const engine = await startEngine(t, { childNice: 7 });
  const held = request(plan([job('j', 'fn(state => new Promise((resolve) => setTimeout(() => resolve(state), 1500)));')]), { urgent: true });
  const running = engine.execute(held.request);
  await until(() => held.events.some((e) => e.type === 'step-start'));
  const pid = engine.stats().children[0]?.pid;
  if (pid === undefined) return t.fail('no child pid');
  t.is(await niceOf(pid), await niceOf(process.pid), 'the main thread only relays messages: it is not held back behind job work');
  // The run's thread (the spare it was booted as) and the next spare; V8's own helper threads keep the child's.
  const nices = await workerThreadNices(pid);
  t.true(nices.length >= 1, 'the run has a thread');
  t.deepEqual(nices, nices.map(() => 7));
  t.is((await running).reason, 'success');
});

test('runs that are not urgent, and the spares booted after them, yield at backgroundNice; the spare after an urgent run boots at childNice', async (t) => {
  const engine = await startEngine(t, { poolSize: 1, childNice: 7, backgroundNice: 15 });
  const pid = engine.stats().children[0]?.pid;
  if (pid === undefined) return t.fail('no child pid');
  const spareReady = () => engine.stats().children[0]?.spareReady === true;
  const held = (urgent: boolean) => request(plan([job('j', 'fn(state => new Promise((resolve) => setTimeout(() => resolve(state), 1500)));')]), { urgent });
  await until(spareReady);
  t.deepEqual(await workerThreadNices(pid), [7], "a child's first spare is kept for urgent runs");

  const background = held(false);
  const backgroundDone = engine.execute(background.request);
  await until(() => background.events.some((e) => e.type === 'step-start'));
  t.deepEqual(await workerThreadNices(pid), [15], 'the spare, given a run that is not urgent, lowered itself');
  t.is((await backgroundDone).reason, 'success');
  await until(spareReady);
  t.deepEqual(await spareOnlyNices(pid), [15], 'the spare after a run that is not urgent boots in the background');

  const urgent = held(true);
  const urgentDone = engine.execute(urgent.request);
  await until(() => urgent.events.some((e) => e.type === 'step-start'));
  t.deepEqual(await workerThreadNices(pid), [15], 'a thread never regains priority: the urgent run keeps what its spare had');
  t.is((await urgentDone).reason, 'success');
  await until(spareReady);
  t.deepEqual(await spareOnlyNices(pid), [7], "the spare after an urgent run is kept for the next one");
});

test('childNice 0 leaves children at the worker\'s priority', async (t) => {
  const engine = await startEngine(t, { childNice: 0 });
  const pid = engine.stats().children[0]?.pid;
  if (pid === undefined) return t.fail('no child pid');
  t.is(await niceOf(pid), await niceOf(process.pid));
});
