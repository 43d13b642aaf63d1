/**
 * Urgent runs and the boot gate, with real children (docs/engine.md, "Pool"
 * and "Warm spares"): other runs leave `reservedWarmChildren` booted children
 * to urgent runs but never wait while an idle child exists, and children boot
 * at most `maxConcurrentBoots` threads at once, an urgent run's first.
 *
 * Boots are held open on purpose: every spare preloads the held-boot fixture
 * adaptor, whose import waits while a file is missing, so a test removes the
 * file, looks at the pool while boots cannot end, and creates it again.
 */
import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import type { ExecutionContext } from 'ava';
import type { Engine, EngineEvent, EngineOptions, RunOutcome } from '../../src/engine/index.ts';
import { waitFor } from '../server/helpers.ts';
import { FIXTURE_DIR, job, plan, request, startEngine, tempDir } from './helpers.ts';

const HELD_BOOT = '@openfn/language-heldboot@1.0.0';
const HELD_BOOT_DIR = fileURLToPath(new URL('../fixtures/held-boot-adaptor/', import.meta.url));
const WAIT = { timeoutMs: 20_000 };

interface HeldBoots {
  engine: Engine;
  /** From now on no thread boot ends. */
  hold(): Promise<void>;
  /** Boots end again. */
  release(): Promise<void>;
}

/** An engine whose children's spares preload the held-boot adaptor, every spare booted. */
async function heldBootEngine(t: ExecutionContext, options: Partial<EngineOptions>): Promise<HeldBoots> {
  const repoDir = await tempDir(t);
  const open = path.join(repoDir, 'boots-may-end');
  await writeFile(open, '');
  const engine = await startEngine(t, {
    repoDir,
    childEnv: { HELD_BOOT_FILE: open },
    localAdaptors: { '@openfn/language-lanesfixture': FIXTURE_DIR, '@openfn/language-heldboot': HELD_BOOT_DIR },
    ...options,
  });
  // A run with the adaptor makes it one of the recent adaptors every later spare imports as it boots.
  const first = await engine.execute(request(plan([job('a', 'fn(s => s)', { adaptor: HELD_BOOT })])).request);
  t.is(first.reason, 'success');
  await waitFor(() => engine.stats().children.every((c) => c.spareReady), { ...WAIT, message: 'every spare to boot' });
  t.teardown(() => writeFile(open, ''));
  return { engine, hold: () => rm(open), release: () => writeFile(open, '') };
}

/** A run of the held-boot adaptor that stays in its job until `release()`. */
function heldRun(engine: Engine, options: { urgent?: boolean } = {}) {
  let release: () => void = () => undefined;
  let asked = false;
  const built = request(plan([job('a', 'fn(s => s)', { adaptor: HELD_BOOT, credential_id: 'hold' })]), {
    ...options,
    fetchCredential: () => {
      asked = true;
      return new Promise((resolve) => (release = () => resolve({})));
    },
  });
  const done = engine.execute(built.request);
  return { runId: built.request.runId, done, inJob: () => asked, release: () => release() };
}

/**
 * A trivial job that asks for a credential: the child it runs on is read when it asks, in its step.
 * (Its run-start comes when the thread's first turn ends, thread-mailbox.ts: for `fn(s => s)`
 * that can be the run's end, when the run holds no child any more.)
 */
const ASKING_JOB = { body: 'fn(s => s)', credential: 'c' } as const;

/** A trivial run; `childAtStart` is the child it ran on, read when its job asked for its credential. */
function quickRun(engine: Engine, options: { urgent?: boolean } = {}) {
  const seen: { childAtStart: number | undefined; events: EngineEvent[] } = { childAtStart: undefined, events: [] };
  const built = request(plan([job('a', ASKING_JOB.body, { adaptor: HELD_BOOT, credential_id: ASKING_JOB.credential })]), {
    ...options,
    onEvent: (event) => seen.events.push(event),
    fetchCredential: async () => {
      seen.childAtStart = childOf(engine, built.request.runId);
      return {};
    },
  });
  const done: Promise<RunOutcome> = engine.execute(built.request);
  return { runId: built.request.runId, done, seen, started: () => seen.events.some((e) => e.type === 'run-start') };
}

function childOf(engine: Engine, runId: string): number | undefined {
  return engine.stats().children.find((c) => c.runId === runId)?.id;
}

test('an urgent run finds a booted child while other runs keep taking children: they wait for a booting one', async (t) => {
  const { engine, hold, release } = await heldBootEngine(t, { poolSize: 3, reservedWarmChildren: 1 });
  const a = heldRun(engine);
  const b = heldRun(engine);
  await waitFor(() => a.inJob() && b.inJob(), { ...WAIT, message: 'two runs to hold two children' });
  const booted = engine.stats().children.find((c) => c.state === 'idle' && c.spareReady)?.id;
  t.not(booted, undefined, 'one idle child with a booted spare is left');
  // The first run's child now boots its next spare, and that boot cannot end.
  await hold();
  const aChild = childOf(engine, a.runId);
  a.release();
  await a.done;
  // Its run over, that child is idle again, booting a spare that cannot end.
  await waitFor(() => engine.stats().children.some((c) => c.id === aChild && c.state === 'idle' && !c.spareReady), { ...WAIT, message: "the first run's child to be idle, booting" });

  const other = quickRun(engine);
  await waitFor(() => childOf(engine, other.runId) !== undefined, { ...WAIT, message: 'the other run to take a child' });
  t.is(childOf(engine, other.runId), aChild, 'the other run took the child still booting, not the one left for urgent runs');
  const urgent = quickRun(engine, { urgent: true });
  const urgentOutcome = await urgent.done;
  t.is(urgentOutcome.reason, 'success', `the urgent run ran while no boot could end: ${urgentOutcome.errorType} ${urgentOutcome.errorMessage}`);
  t.is(urgent.seen.childAtStart, booted, 'on the booted child');
  t.false(other.started(), 'the other run still waits for its boot');

  await release();
  t.is((await other.done).reason, 'success');
  b.release();
  t.is((await b.done).reason, 'success');
});

test('a run that is not urgent takes the booted child left for urgent runs when no other idle child is left', async (t) => {
  const engine = await startEngine(t, { poolSize: 2, reservedWarmChildren: 1 });
  await waitFor(() => engine.stats().children.every((c) => c.spareReady), { ...WAIT, message: 'every spare to boot' });
  const held = request(plan([job('a', 'fn(s => s)', { credential_id: 'hold' })]), { fetchCredential: () => new Promise(() => undefined) }).request;
  const holding = engine.execute(held);
  await waitFor(() => childOf(engine, held.runId) !== undefined, { ...WAIT, message: 'a run to hold one child' });
  const next = request(plan([job('a', 'fn(s => ({ ...s, data: "ran" }))')])).request;
  // It ends on its own only if it took the reserved child rather than wait for the held run's.
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<'still waiting'>((resolve) => (timer = setTimeout(() => resolve('still waiting'), WAIT.timeoutMs)));
  const outcome = await Promise.race([engine.execute(next).then((o) => o.reason), deadline]);
  clearTimeout(timer);
  t.is(outcome, 'success');
  await engine.stop();
  t.is((await holding).errorType, 'ShutdownError');
});

test('the boot gate lets at most maxConcurrentBoots boots run at once; the others wait their turn', async (t) => {
  const { engine, hold, release } = await heldBootEngine(t, { poolSize: 3, maxConcurrentBoots: 1 });
  await hold();
  // Three runs end together: each child wants its next spare.
  const runs = [quickRun(engine), quickRun(engine), quickRun(engine)];
  t.deepEqual((await Promise.all(runs.map((r) => r.done))).map((o) => o.reason), ['success', 'success', 'success']);
  await waitFor(() => engine.stats().boots?.waiting === 2, { ...WAIT, message: 'two children to wait for the gate' });
  const { boots, children } = engine.stats();
  t.is(boots?.booting, 1, 'one boot runs');
  t.is(children.filter((c) => c.bootWaiting).length, 2);
  t.is(children.filter((c) => c.spareReady).length, 0);

  await release();
  await waitFor(() => engine.stats().children.every((c) => c.spareReady), { ...WAIT, message: 'every spare to boot in turn' });
  t.is(engine.stats().boots?.mostAtOnce, 1, 'never two boots at once');
});

test("an urgent run's thread boots at once, past the gate's limit; other boots still wait", async (t) => {
  const { engine, hold, release } = await heldBootEngine(t, { poolSize: 3, maxConcurrentBoots: 1 });
  await hold();
  const runs = [quickRun(engine), quickRun(engine), quickRun(engine)];
  await Promise.all(runs.map((r) => r.done));
  await waitFor(() => engine.stats().boots?.waiting === 2, { ...WAIT, message: 'two children to wait for the gate' });
  // A run that is not urgent takes the child whose boot runs; the urgent one a child waiting for the gate.
  const other = quickRun(engine);
  await waitFor(() => childOf(engine, other.runId) !== undefined, { ...WAIT, message: 'the other run to take a child' });
  const urgent = quickRun(engine, { urgent: true });
  await waitFor(() => childOf(engine, urgent.runId) !== undefined, { ...WAIT, message: 'the urgent run to take a child' });
  await waitFor(() => engine.stats().boots?.booting === 2, { ...WAIT, message: "the urgent run's boot to start" });
  t.is(engine.stats().boots?.waiting, 1, 'the last child still waits for the gate');
  t.false(engine.stats().children.find((c) => c.id === childOf(engine, urgent.runId))?.bootWaiting);

  await release();
  t.deepEqual([(await urgent.done).reason, (await other.done).reason], ['success', 'success']);
  await waitFor(() => engine.stats().children.every((c) => c.spareReady), { ...WAIT, message: 'every spare to boot' });
});

test("an urgent run takes the idle child whose spare booted at the urgent runs' priority; another run leaves it", async (t) => {
  const engine = await startEngine(t, { poolSize: 2, reservedWarmChildren: 1, childNice: 5, backgroundNice: 15 });
  const allBooted = () => waitFor(() => engine.stats().children.every((c) => c.spareReady), { ...WAIT, message: 'every spare to boot' });
  /** Runs a trivial run to its end; resolves with the child it ran on. */
  const runOn = async (urgent: boolean): Promise<number | undefined> => {
    let child: number | undefined;
    const built = request(plan([job('a', ASKING_JOB.body, { credential_id: ASKING_JOB.credential })]), {
      urgent,
      fetchCredential: async () => {
        child = childOf(engine, built.request.runId);
        return {};
      },
    });
    t.is((await engine.execute(built.request)).reason, 'success');
    return child;
  };
  await allBooted();
  // Each child's first spare is kept for urgent runs. A run that is not urgent leaves one such child
  // to them; the child it takes boots its next spare in the background.
  const background = await runOn(false);
  await allBooted();
  const kept = await runOn(true);
  t.not(kept, background);
  await allBooted();
  // The child of the background spare is now the one idle longest: an urgent run still takes the other.
  t.is(await runOn(true), kept, 'the urgent run took the child whose spare is at the urgent priority');
  await allBooted();
  t.is(await runOn(false), background, 'the other run left that child to urgent runs');
});

test('a run goes to an idle child whose warm spare has booted, before a less recently used one still booting', async (t) => {
  const { engine, hold, release } = await heldBootEngine(t, { poolSize: 3 });
  // Three runs hold all three children; the pool's order of use is now their order of acquisition.
  const first = heldRun(engine);
  await waitFor(first.inJob, { ...WAIT, message: 'the first run in its job' });
  const second = heldRun(engine);
  await waitFor(second.inJob, { ...WAIT, message: 'the second run in its job' });
  const third = heldRun(engine);
  await waitFor(third.inJob, { ...WAIT, message: 'the third run in its job' });
  const firstChild = childOf(engine, first.runId);
  const secondChild = childOf(engine, second.runId);
  // The second child finishes first and boots its next spare; then the first child finishes while no
  // boot can end: it is now the least recently used idle child, and its spare is not ready.
  second.release();
  t.is((await second.done).reason, 'success');
  await waitFor(() => engine.stats().children.find((c) => c.id === secondChild)?.spareReady === true, { ...WAIT, message: "the second child's spare to boot" });
  await hold();
  first.release();
  t.is((await first.done).reason, 'success');
  t.false(engine.stats().children.find((c) => c.id === firstChild)?.spareReady, "the first child's spare is still booting");
  const next = heldRun(engine);
  await waitFor(() => childOf(engine, next.runId) !== undefined, { ...WAIT, message: 'the next run to take a child' });
  t.is(childOf(engine, next.runId), secondChild, 'the run went to the idle child whose spare had booted');
  await release();
  await waitFor(next.inJob, { ...WAIT, message: 'the next run in its job' });
  t.not(childOf(engine, next.runId), childOf(engine, third.runId));
  third.release();
  next.release();
  t.deepEqual((await Promise.all([third.done, next.done])).map((o) => o.reason), ['success', 'success']);
});
