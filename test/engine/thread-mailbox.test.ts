/**
 * A run's reports from its thread's first turn wait in the thread's mailbox
 * (thread-mailbox.ts), so the child and the worker stay asleep while the job
 * gets to its first line. They keep their order, are read when the turn
 * ends, while a long turn lasts, and when the thread dies, and are never lost.
 */
import test from 'ava';
import type { EngineEvent } from '../../src/engine/index.ts';
import { FIRST_TURN_POLL_MS, MAILBOX_BYTES, MailboxReader, MailboxWriter, createMailbox } from '../../src/engine/thread-mailbox.ts';
import { waitFor } from '../server/helpers.ts';
import { job, plan, request, startEngine } from './helpers.ts';

test('reports are read once, in order, only after the writer opened it; closed, it takes nothing more', (t) => {
  const buffer = createMailbox();
  const writer = new MailboxWriter(buffer);
  const reader = new MailboxReader(buffer);
  t.false(writer.write({ type: 'started', timestamp: '1' }), 'closed until the thread takes its run');
  writer.open();
  t.true(writer.write({ type: 'started', timestamp: '1' }));
  t.true(writer.write({ type: 'event', event: { type: 'log', message: 'é ✓ 🚀' } }));
  t.deepEqual(reader.take(), [{ type: 'started', timestamp: '1' }, { type: 'event', event: { type: 'log', message: 'é ✓ 🚀' } }]);
  t.deepEqual(reader.take(), [], 'each once');
  t.true(writer.write({ type: 'event', event: { type: 'step-start' } }));
  writer.close();
  t.false(writer.write({ type: 'event', event: { type: 'log' } }), 'closed: the thread posts instead');
  writer.open();
  t.false(writer.write({ type: 'event', event: { type: 'log' } }), 'opened once only');
  t.deepEqual(reader.take(), [{ type: 'event', event: { type: 'step-start' } }]);
});

test('a report that does not fit closes the mailbox, and what it held stays readable', (t) => {
  const buffer = createMailbox();
  const writer = new MailboxWriter(buffer);
  const reader = new MailboxReader(buffer);
  writer.open();
  t.true(writer.write({ n: 1 }));
  t.false(writer.write({ big: 'x'.repeat(MAILBOX_BYTES) }));
  t.false(writer.write({ n: 2 }), 'nothing after it: it is posted, after what the mailbox holds');
  t.deepEqual(reader.take(), [{ n: 1 }]);
});

test('a record that is not JSON ends the reading with a null, which the child treats as a violation', (t) => {
  const buffer = createMailbox();
  const writer = new MailboxWriter(buffer);
  writer.open();
  writer.write({ n: 1 });
  // Job code that reached the buffer could scribble in it: the child must not choke on it.
  new Uint8Array(buffer)[8] = 0xff;
  t.deepEqual(new MailboxReader(buffer).take(), [null]);
});

test('a job computing in its first turn still shows its start within the poll interval, long before it ends', async (t) => {
  const engine = await startEngine(t, { poolSize: 1 });
  const seenAt = new Map<string, number>();
  const recorded = request(plan([job('a', 'fn(s => { const end = Date.now() + 1500; while (Date.now() < end); return s; })')]), {
    onEvent: (e: EngineEvent) => {
      if (!seenAt.has(e.type)) seenAt.set(e.type, performance.now());
    },
  });
  const outcome = await engine.execute(recorded.request);
  t.is(outcome.reason, 'success');
  const stepStart = seenAt.get('step-start');
  const runEnd = seenAt.get('run-complete') ?? performance.now();
  t.truthy(stepStart, 'the step started');
  // Left in the mailbox until the turn ends, it would come with the end.
  t.true(runEnd - (stepStart ?? runEnd) > 1000, `step-start ${Math.round(runEnd - (stepStart ?? runEnd))} ms before the end (poll interval ${FIRST_TURN_POLL_MS} ms)`);
});

test('a run killed in its first turn reports its start and its step before its end', async (t) => {
  const engine = await startEngine(t, { poolSize: 1 });
  // A first run, so that the timed run's thread is a warm spare: its time-out counts from the dispatch.
  t.is((await engine.execute(request(plan([job('w', 'fn(s => s)')])).request)).reason, 'success');
  const recorded = request(plan([job('a', 'fn(s => { for (;;); })')]), { limits: { timeoutMs: 1000 } });
  const outcome = await engine.execute(recorded.request);
  t.is(outcome.errorType, 'TimeoutError');
  const types = recorded.events.map((e) => e.type).filter((type) => type !== 'log');
  t.deepEqual(types, ['run-start', 'step-start', 'step-complete', 'run-complete']);
  const complete = recorded.events.find((e) => e.type === 'step-complete');
  t.is(complete?.type === 'step-complete' ? complete.errorType : undefined, 'TimeoutError');
});

// With the child's reads during the turn a minute apart, only the read that the end of the turn, or the
// thread's death, brings can pass the reports on.
const NO_POLL = { poolSize: 1, firstTurnPollMs: 60_000 };

test('a job that awaits in its first turn shows its start as soon as that turn ends', async (t) => {
  const engine = await startEngine(t, NO_POLL);
  // A first run, so that this one's thread is a warm spare and its wait starts at once.
  t.is((await engine.execute(request(plan([job('w', 'fn(s => s)')])).request)).reason, 'success');
  let stepStarted = false;
  const recorded = request(plan([job('a', 'fn(s => new Promise((resolve) => setTimeout(() => resolve(s), 6000)))')]), {
    onEvent: (e: EngineEvent) => {
      if (e.type === 'step-start') stepStarted = true;
    },
  });
  const running = engine.execute(recorded.request);
  const deadline = Date.now() + 5000;
  while (!stepStarted && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  t.true(stepStarted, 'step-start came while the job awaited');
  t.is((await running).reason, 'success');
});

test('a run whose thread dies in its first turn, before its reports were read, reports its start and its step before its end', async (t) => {
  const engine = await startEngine(t, NO_POLL);
  // A rejection nobody handles ends the thread at the end of this turn, while the job still awaits.
  const recorded = request(plan([job('a', "fn(s => { Promise.reject(new Error('boom')); return new Promise(() => {}); })")]));
  const outcome = await engine.execute(recorded.request);
  t.is(outcome.reason, 'crash', JSON.stringify(outcome));
  const types = recorded.events.map((e) => e.type).filter((type) => type !== 'log');
  t.deepEqual(types, ['run-start', 'step-start', 'step-complete', 'run-complete']);
});

test('a run stopped from outside before its first-turn reports were read (a time-out, a cancel) still reports its start and its step before its end', async (t) => {
  // The child is given all the time it needs to answer the stop: this is about what it sends, not how soon.
  const engine = await startEngine(t, { ...NO_POLL, stopDrainMs: 10_000 });
  // A first run, so that the stopped runs' threads are warm spares: the stops come while their jobs compute.
  t.is((await engine.execute(request(plan([job('w', 'fn(s => s)')])).request)).reason, 'success');
  // Each stopped run starts on a booted spare, at the urgent runs' priority, and is stopped a second later: under a
  // loaded machine a run on a spare still booting, or at the background nice, may not have reached its job by then.
  const spareBooted = () => waitFor(() => engine.stats().children[0]?.spareReady === true, { timeoutMs: 60_000, message: 'the next spare to boot' });
  await spareBooted();
  // A first turn that never ends: the reads at its end, and by the poll, never come; only the stop's can pass the reports on.
  const timedOut = request(plan([job('a', 'fn(s => { for (;;); })')]), { urgent: true, limits: { timeoutMs: 1_000 } });
  const outcome = await engine.execute(timedOut.request);
  t.is(outcome.errorType, 'TimeoutError');
  t.deepEqual(timedOut.events.map((e) => e.type).filter((type) => type !== 'log'), ['run-start', 'step-start', 'step-complete', 'run-complete']);

  await spareBooted();
  const controller = new AbortController();
  const cancelled = request(plan([job('b', 'fn(s => { for (;;); })')]), { urgent: true, signal: controller.signal });
  const running = engine.execute(cancelled.request);
  setTimeout(() => controller.abort(), 1_000);
  t.is((await running).reason, 'kill');
  t.deepEqual(cancelled.events.map((e) => e.type).filter((type) => type !== 'log'), ['run-start', 'step-start', 'step-complete', 'run-complete']);
});

test('a stop settles within stopDrainMs (100 ms by default) when the child cannot answer, not after the kill grace', async (t) => {
  const engine = await startEngine(t, { ...NO_POLL, killGraceMs: 5_000 });
  t.is((await engine.execute(request(plan([job('w', 'fn(s => s)')])).request)).reason, 'success');
  const pid = engine.stats().children[0]?.pid;
  if (pid === undefined) return t.fail('no child');
  const timeoutMs = 1_000;
  const recorded = request(plan([job('a', 'fn(s => { for (;;); })')]), { limits: { timeoutMs } });
  const startedAt = performance.now();
  const running = engine.execute(recorded.request);
  // The child's main thread stops as the shell's Ctrl-Z would stop it: it cannot read the stop, let alone answer it.
  setTimeout(() => process.kill(pid, 'SIGSTOP'), timeoutMs / 2);
  const outcome = await running;
  const tookMs = performance.now() - startedAt;
  t.is(outcome.errorType, 'TimeoutError');
  t.true(tookMs < timeoutMs + 1_000, `settled ${Math.round(tookMs)} ms after the dispatch (time-out ${timeoutMs} ms, kill grace 5000 ms)`);
  // The kill grace then takes the stopped child down (SIGKILL reaches a stopped process).
  await new Promise((resolve) => setTimeout(resolve, 5_500));
  t.throws(() => process.kill(pid, 0), { code: 'ESRCH' }, 'the stopped child was killed after the grace');
});
