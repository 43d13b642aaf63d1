import test from 'ava';
import type { ExecutionContext } from 'ava';
import pino from 'pino';
import { AFTER_SHORT_HELD_CLAIM_MS, Workloop } from '../../src/lanes/workloop.ts';
import { LaneMemory } from '../../src/lanes/lane-memory.ts';
import type { ClaimRequest, ClaimSettled, Claimer } from '../../src/lanes/claimer.ts';
import type { LaneSpec } from '../../src/lanes/parse-workloops.ts';
import type { ClaimedRun } from '../../src/protocol/messages.ts';

const silent = pino({ level: 'silent' });
/** Long enough that no test ever sees a timed retry: only work-available and finished runs wake a lane. */
const SLOW_BACKOFF = { minMs: 60_000, maxMs: 60_000 };

interface Deferred<T> {
  promise: Promise<T>;
  resolve: (value: T) => void;
  reject: (error: unknown) => void;
}

function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

async function waitFor(t: ExecutionContext, condition: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) {
      t.fail(`timed out waiting for ${what}`);
      throw new Error(`timed out waiting for ${what}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

/** Flushes pending promise callbacks so that "nothing else happened" can be asserted without sleeping. */
async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve));
}

/** A claimer whose every claim waits until the test answers it. */
class ManualClaimer implements Claimer {
  readonly requests: ClaimRequest[] = [];
  readonly pending: Deferred<readonly ClaimedRun[]>[] = [];
  readonly signals: AbortSignal[] = [];
  inFlight = 0;
  maxInFlight = 0;

  claim(request: ClaimRequest, signal: AbortSignal): Promise<readonly ClaimedRun[]> {
    this.requests.push(request);
    this.signals.push(signal);
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    const answer = deferred<readonly ClaimedRun[]>();
    this.pending.push(answer);
    return answer.promise.finally(() => {
      this.inFlight--;
    });
  }

  /** Answers the oldest unanswered claim. */
  answer(runs: readonly ClaimedRun[]): void {
    const next = this.pending.shift();
    if (next === undefined) throw new Error('no claim to answer');
    next.resolve(runs);
  }

  fail(error: unknown): void {
    const next = this.pending.shift();
    if (next === undefined) throw new Error('no claim to fail');
    next.reject(error);
  }
}

/** Runs that last until the test finishes them; tracks the most that were active at once. */
class ManualRuns {
  readonly started: string[] = [];
  readonly #running = new Map<string, Deferred<void>>();
  maxActive = 0;

  readonly start = (run: ClaimedRun): Promise<void> => {
    this.started.push(run.id);
    const done = deferred<void>();
    this.#running.set(run.id, done);
    this.maxActive = Math.max(this.maxActive, this.#running.size);
    return done.promise.finally(() => this.#running.delete(run.id));
  };

  finish(runId: string): void {
    const run = this.#running.get(runId);
    if (run === undefined) throw new Error(`run ${runId} is not running`);
    run.resolve();
  }

  finishAll(): void {
    for (const run of this.#running.values()) run.resolve();
  }
}

let nextRun = 0;
function runs(count: number): ClaimedRun[] {
  return Array.from({ length: count }, () => ({ id: `run-${++nextRun}`, token: 'token' }));
}

function lane(queues: string[], capacity: number): LaneSpec {
  return { id: `${queues.join('>')}:${capacity}`, queues, capacity };
}

function makeLoop(
  t: ExecutionContext,
  options: {
    spec: LaneSpec;
    claimer: Claimer;
    runs: ManualRuns;
    backoff?: { minMs: number; maxMs: number };
    settled?: ClaimSettled[];
    memory?: LaneMemory;
  },
): Workloop {
  const loop = new Workloop({
    spec: options.spec,
    claimer: options.claimer,
    startRun: options.runs.start,
    backoff: options.backoff ?? SLOW_BACKOFF,
    memory: options.memory,
    logger: silent,
    onClaimSettled: (event) => options.settled?.push(event),
  });
  t.teardown(async () => {
    options.runs.finishAll();
    await loop.stop({ force: true });
    // A lane left running would keep claiming after the test: fail loudly.
    if (loop.state !== 'stopped') throw new Error(`lane ${loop.id} left in state ${loop.state}`);
  });
  return loop;
}

/** Starts the lane and answers its first claim empty: it is backing off (for a minute) when this resolves. */
async function startBackingOff(t: ExecutionContext, loop: Workloop, claimer: ManualClaimer): Promise<void> {
  loop.start();
  await waitFor(t, () => claimer.requests.length === 1, 'the first claim');
  claimer.answer([]);
  await waitFor(t, () => loop.state === 'waiting', 'the backoff');
}

test('claims its free slots for its own queue chain as soon as it starts', async (t) => {
  const claimer = new ManualClaimer();
  const loop = makeLoop(t, { spec: lane(['manual', '*'], 4), claimer, runs: new ManualRuns() });
  loop.start();
  loop.start(); // idempotent
  await waitFor(t, () => claimer.requests.length === 1, 'the first claim');
  t.deepEqual(claimer.requests[0], { demand: 4, queues: ['manual', '*'] });
  t.is(loop.state, 'claiming');
  t.is(loop.promisedCount, 4);
  await settle();
  t.is(claimer.requests.length, 1, 'start() twice runs one loop');
  claimer.answer([]);
});

test('backoff grows while claims come back empty and starts over after a claim brings runs', async (t) => {
  const settled: ClaimSettled[] = [];
  const claimedAt: number[] = [];
  const claimer: Claimer = {
    claim: async () => {
      claimedAt.push(performance.now());
      // Three empty claims, one run, then empty for ever.
      return claimedAt.length === 4 ? runs(1) : [];
    },
  };
  const minMs = 50;
  const loop = makeLoop(t, { spec: lane(['default'], 2), claimer, runs: new ManualRuns(), backoff: { minMs, maxMs: 10_000 }, settled });
  loop.start();
  await waitFor(t, () => settled.length >= 7, 'seven claims');
  await loop.stop();
  t.deepEqual(
    settled.slice(0, 7).map((event) => [event.outcome, event.attempt]),
    [
      ['empty', 1],
      ['empty', 2],
      ['empty', 3],
      ['runs', 4],
      ['empty', 1],
      ['empty', 2],
      ['empty', 3],
    ],
  );
  t.true(settled.slice(4).every((event) => event.demand === 1), 'the claimed run holds a slot');
  // The wait after the nth empty claim in a row is at least minMs * 2^(n-1) (jitter only lengthens
  // it). Only lower bounds: a loaded machine makes waits longer, never shorter (a timer may fire
  // a millisecond early, hence the slack).
  const gap = (n: number) => (claimedAt[n] ?? Number.NaN) - (claimedAt[n - 1] ?? Number.NaN);
  const slackMs = 3;
  t.true(gap(1) >= minMs - slackMs, `wait after the first empty claim: ${gap(1)} ms`);
  t.true(gap(2) >= 2 * minMs - slackMs, `wait after the second empty claim: ${gap(2)} ms`);
  t.true(gap(3) >= 4 * minMs - slackMs, `wait after the third empty claim: ${gap(3)} ms`);
  t.true(gap(6) >= 2 * minMs - slackMs, `wait after the second empty claim since the run: ${gap(6)} ms`);
});

test('after an empty claim the lane waits, and work-available cuts the wait short', async (t) => {
  const claimer = new ManualClaimer();
  const loop = makeLoop(t, { spec: lane(['default'], 1), claimer, runs: new ManualRuns() });
  await startBackingOff(t, loop, claimer);
  await settle();
  t.is(claimer.requests.length, 1, 'no claim during the backoff');
  loop.workAvailable();
  await waitFor(t, () => claimer.requests.length === 2, 'a claim on work-available');
  claimer.answer([]);
});

test('after a claim brings fewer runs than its demand the lane waits, and work-available cuts the wait short', async (t) => {
  const claimer = new ManualClaimer();
  const loop = makeLoop(t, { spec: lane(['manual', '*'], 4), claimer, runs: new ManualRuns() });
  loop.start();
  await waitFor(t, () => claimer.requests.length === 1, 'the first claim');
  claimer.answer(runs(1));
  await waitFor(t, () => loop.state === 'waiting', 'the wait after a short claim');
  await settle();
  t.is(claimer.requests.length, 1, 'the drained queues are not asked again at once');
  t.is(loop.activeCount, 1);
  loop.workAvailable();
  await waitFor(t, () => claimer.requests.length === 2, 'a claim on work-available');
  t.deepEqual(claimer.requests[1], { demand: 3, queues: ['manual', '*'] });
  claimer.answer(runs(3));
  await waitFor(t, () => loop.state === 'full', 'a full lane');
  t.is(loop.activeCount, 4);
});

test('a burst of 50 work-available pushes during slow claims never claims beyond capacity', async (t) => {
  const claimer = new ManualClaimer();
  const manual = new ManualRuns();
  const loop = makeLoop(t, { spec: lane(['manual', '*'], 3), claimer, runs: manual });
  loop.start();
  await waitFor(t, () => claimer.requests.length === 1, 'the first claim');
  for (let i = 0; i < 50; i++) loop.workAvailable();
  await settle();
  t.is(claimer.requests.length, 1, 'one claim in flight at a time');

  claimer.answer(runs(2));
  await waitFor(t, () => claimer.requests.length === 2, 'a claim for the last slot');
  t.is(claimer.requests[1]?.demand, 1);
  for (let i = 0; i < 50; i++) loop.workAvailable();
  claimer.answer(runs(1));
  await waitFor(t, () => loop.state === 'full', 'a full lane');
  for (let i = 0; i < 50; i++) loop.workAvailable();
  await settle();

  t.is(claimer.requests.length, 2, 'a full lane does not claim');
  t.is(claimer.maxInFlight, 1);
  t.is(manual.maxActive, 3);
  t.is(loop.activeCount, 3);
  t.is(loop.promisedCount, 0);
});

test('work-available during a claim that comes back empty makes exactly one more claim', async (t) => {
  const claimer = new ManualClaimer();
  const loop = makeLoop(t, { spec: lane(['default'], 2), claimer, runs: new ManualRuns() });
  loop.start();
  await waitFor(t, () => claimer.requests.length === 1, 'the first claim');
  for (let i = 0; i < 50; i++) loop.workAvailable();
  claimer.answer([]);
  await waitFor(t, () => claimer.requests.length === 2, 'the follow-up claim');
  claimer.answer([]);
  await waitFor(t, () => loop.state === 'waiting', 'the backoff');
  await settle();
  t.is(claimer.requests.length, 2);
});

test('a server that returns more runs than the demand never pushes the lane past capacity', async (t) => {
  const claimer = new ManualClaimer();
  const manual = new ManualRuns();
  const loop = makeLoop(t, { spec: lane(['default'], 2), claimer, runs: manual });
  loop.start();
  await waitFor(t, () => claimer.requests.length === 1, 'the first claim');
  const given = runs(5);
  claimer.answer(given);
  await waitFor(t, () => loop.state === 'full', 'a full lane');
  t.is(loop.activeCount, 2);
  t.is(loop.backlogCount, 3, 'the extra runs are kept, not dropped');

  for (const run of given) {
    await waitFor(t, () => manual.started.includes(run.id), `run ${run.id} to start`);
    manual.finish(run.id);
  }
  await waitFor(t, () => claimer.requests.length === 2, 'a claim once the backlog is done');
  t.is(manual.maxActive, 2);
  t.deepEqual(manual.started, given.map((run) => run.id));
  claimer.answer([]);
});

test('when a run finishes only its own lane claims again', async (t) => {
  const fastClaimer = new ManualClaimer();
  const manualClaimer = new ManualClaimer();
  const fastRuns = new ManualRuns();
  const manualRuns = new ManualRuns();
  const fast = makeLoop(t, { spec: lane(['fast_lane'], 1), claimer: fastClaimer, runs: fastRuns });
  const manual = makeLoop(t, { spec: lane(['manual', '*'], 2), claimer: manualClaimer, runs: manualRuns });
  fast.start();
  manual.start();
  await waitFor(t, () => fastClaimer.requests.length === 1 && manualClaimer.requests.length === 1, 'both lanes to claim');
  const fastRun = runs(1);
  fastClaimer.answer(fastRun);
  manualClaimer.answer([]);
  await waitFor(t, () => fast.state === 'full' && manual.state === 'waiting', 'fast full, manual backing off');

  fastRuns.finish(fastRun[0]!.id);
  await waitFor(t, () => fastClaimer.requests.length === 2, 'the fast lane to claim at once');
  await settle();
  t.is(manualClaimer.requests.length, 1, 'the manual lane was not woken');
  fastClaimer.answer([]);
});

test('a failed claim, even a TypeError, is retried with backoff and frees its promised slots', async (t) => {
  const settled: ClaimSettled[] = [];
  let calls = 0;
  const claimer: Claimer = {
    claim: async () => {
      calls++;
      if (calls === 1) throw new TypeError('boom');
      if (calls === 2) throw new Error('socket closed');
      return [];
    },
  };
  const loop = makeLoop(t, { spec: lane(['default'], 1), claimer, runs: new ManualRuns(), backoff: { minMs: 1, maxMs: 2 }, settled });
  loop.start();
  await waitFor(t, () => settled.length >= 3, 'three claims');
  t.deepEqual(
    settled.slice(0, 3).map((event) => [event.outcome, event.attempt]),
    [
      ['error', 1],
      ['error', 2],
      ['empty', 3],
    ],
  );
  t.is(loop.freeSlots, 1);
});

test('stop() ends a backoff wait at once and returns the same promise when called again', async (t) => {
  const claimer = new ManualClaimer();
  const loop = makeLoop(t, { spec: lane(['default'], 1), claimer, runs: new ManualRuns() });
  await startBackingOff(t, loop, claimer);
  const first = loop.stop();
  t.is(loop.stop(), first);
  await first;
  t.is(loop.state, 'stopped');
  loop.workAvailable();
  loop.start();
  await settle();
  t.is(claimer.requests.length, 1, 'a stopped lane never claims');
});

test('stop() waits for the claim in flight and starts the runs it brings', async (t) => {
  const claimer = new ManualClaimer();
  const manual = new ManualRuns();
  const loop = makeLoop(t, { spec: lane(['default'], 2), claimer, runs: manual });
  loop.start();
  await waitFor(t, () => claimer.requests.length === 1, 'the first claim');
  let stopped = false;
  const stopping = loop.stop().then(() => {
    stopped = true;
  });
  t.is(loop.state, 'stopping');
  t.false(claimer.signals[0]?.aborted, 'a graceful stop does not abandon the claim');
  await settle();
  t.false(stopped, 'stop waits for the claim');
  const claimed = runs(2);
  claimer.answer(claimed);
  await stopping;
  t.deepEqual(manual.started, claimed.map((run) => run.id), 'a claimed run is never dropped');
  t.is(claimer.requests.length, 1, 'no claim after stop');
  let idle = false;
  const whenIdle = loop.whenIdle().then(() => {
    idle = true;
  });
  await settle();
  t.false(idle);
  manual.finishAll();
  await whenIdle;
  t.true(idle);
});

test('stop({force: true}) aborts the claim in flight', async (t) => {
  const claimer = new ManualClaimer();
  const loop = makeLoop(t, { spec: lane(['default'], 1), claimer, runs: new ManualRuns() });
  loop.start();
  await waitFor(t, () => claimer.requests.length === 1, 'the first claim');
  const signal = claimer.signals[0]!;
  const stopping = loop.stop({ force: true });
  t.true(signal.aborted);
  claimer.fail(signal.reason);
  await stopping;
  t.is(loop.state, 'stopped');
  t.is(loop.promisedCount, 0);
});

test('stop() before start() leaves the lane stopped without claiming', async (t) => {
  const claimer = new ManualClaimer();
  const loop = makeLoop(t, { spec: lane(['default'], 1), claimer, runs: new ManualRuns() });
  await loop.stop();
  loop.start();
  await settle();
  t.is(loop.state, 'stopped');
  t.is(claimer.requests.length, 0);
});

test('work-available during a backoff sends the claim before workAvailable() returns, and a wake during that claim asks again after it', async (t) => {
  const claimer = new ManualClaimer();
  const runner = new ManualRuns();
  const settled: ClaimSettled[] = [];
  const loop = makeLoop(t, { spec: lane(['manual', '*'], 2), claimer, runs: runner, settled });
  await startBackingOff(t, loop, claimer);
  loop.workAvailable();
  t.is(claimer.requests.length, 2, 'sent synchronously, not after the backoff unwinds');
  t.is(loop.state, 'claiming');
  t.is(loop.promisedCount, 2);
  loop.workAvailable();
  loop.workAvailable();
  t.is(claimer.requests.length, 2, 'one claim in flight at a time');
  claimer.answer([]);
  // Work arrived while that claim was in flight: the lane asks once more, then backs off.
  await waitFor(t, () => claimer.requests.length === 3, 'the claim asked for during the last one');
  claimer.answer(runs(1));
  await waitFor(t, () => runner.started.length === 1, 'the run started');
  t.is(claimer.maxInFlight, 1);
  t.deepEqual(settled.map((event) => event.outcome), ['empty', 'empty', 'runs']);
  t.deepEqual(settled.map((event) => event.attempt), [1, 1, 1], 'each wake starts a fresh backoff');
});

test('a claim sent from a wake that comes back empty backs off like any other, and the next wake claims at once again', async (t) => {
  const claimer = new ManualClaimer();
  const settled: ClaimSettled[] = [];
  const loop = makeLoop(t, { spec: lane(['default'], 1), claimer, runs: new ManualRuns(), settled });
  await startBackingOff(t, loop, claimer);
  for (let wake = 2; wake <= 4; wake += 1) {
    await waitFor(t, () => loop.state === 'waiting', `backoff ${wake - 1}`);
    loop.workAvailable();
    t.is(claimer.requests.length, wake);
    claimer.answer([]);
  }
  await waitFor(t, () => settled.length === 4, 'four settled claims');
  await waitFor(t, () => loop.state === 'waiting', 'the last backoff');
  await settle();
  t.is(claimer.requests.length, 4, 'no claim without a wake (the backoff is a minute)');
});

test('a lane stopped while a claim sent from a wake is in flight waits for it and starts its runs', async (t) => {
  const claimer = new ManualClaimer();
  const runner = new ManualRuns();
  const loop = makeLoop(t, { spec: lane(['default'], 2), claimer, runs: runner });
  await startBackingOff(t, loop, claimer);
  loop.workAvailable();
  t.is(claimer.requests.length, 2);
  let stopped = false;
  const stopping = loop.stop().then(() => {
    stopped = true;
  });
  await settle();
  t.false(stopped, 'stop() waits for the claim in flight');
  claimer.answer(runs(2));
  await stopping;
  t.is(loop.state, 'stopped');
  t.is(runner.started.length, 2, 'a claimed run is never dropped');
  t.is(claimer.requests.length, 2, 'no claim after stop()');
});

test('stop() ends the wait of a full lane at once, leaving its runs active', async (t) => {
  const claimer = new ManualClaimer();
  const runner = new ManualRuns();
  const loop = makeLoop(t, { spec: lane(['default'], 2), claimer, runs: runner });
  loop.start();
  await waitFor(t, () => claimer.requests.length === 1, 'the first claim');
  claimer.answer(runs(2));
  await waitFor(t, () => loop.state === 'full', 'a full lane');
  let stopped = false;
  const stopping = loop.stop().then(() => {
    stopped = true;
  });
  await waitFor(t, () => stopped, 'stop() to resolve while the lane waits for a slot');
  await stopping;
  t.is(loop.state, 'stopped');
  t.is(loop.activeCount, 2, 'stopping a lane does not touch its active runs');
  runner.finishAll();
  await loop.whenIdle();
  t.is(claimer.requests.length, 1, 'a freed slot of a stopped lane claims nothing');
});

test('a lane stopped while a claim sent from a wake is in flight stops at once when that claim comes back empty', async (t) => {
  const claimer = new ManualClaimer();
  const loop = makeLoop(t, { spec: lane(['default'], 1), claimer, runs: new ManualRuns() });
  await startBackingOff(t, loop, claimer);
  loop.workAvailable();
  t.is(claimer.requests.length, 2);
  // The backoff the wake cut short has unwound and a new cycle awaits the claim: stop() must reach that cycle.
  await settle();
  let stopped = false;
  const stopping = loop.stop().then(() => {
    stopped = true;
  });
  claimer.answer([]);
  // The backoff is a minute: a cycle stop() did not reach would wait it out.
  await waitFor(t, () => stopped, 'stop() to resolve without waiting out the backoff');
  await stopping;
  t.is(loop.state, 'stopped');
  t.is(claimer.requests.length, 2, 'no claim after stop()');
});

test('a lane whose short claim filled its memory waits the minimum backoff once a run ends, then claims', async (t) => {
  const claimer = new ManualClaimer();
  const runner = new ManualRuns();
  const memory = new LaneMemory({ memoryMb: 1000, defaultRunMb: 250, largestRunMb: 1000 }, true);
  // A long maximum: a lane that fell into the cycle's error path would wait it out.
  const loop = makeLoop(t, { spec: lane(['default'], 4), claimer, runs: runner, memory, backoff: { minMs: 20, maxMs: 60_000 } });
  loop.start();
  await waitFor(t, () => claimer.requests.length === 1, 'the first claim');
  t.is(claimer.requests[0]?.demand, 4);
  // One run of the four asked for (short: the queue is drained), and it takes the lane's whole memory.
  const [big] = runs(1);
  if (big === undefined) throw new Error('no run');
  claimer.answer([{ ...big, memory_mb: 1000 }]);
  await waitFor(t, () => loop.state === 'full', 'a lane full by memory');
  runner.finish(big.id);
  await waitFor(t, () => claimer.requests.length === 2, 'a claim after the minimum backoff');
  t.is(claimer.requests[1]?.demand, 4);
  claimer.answer([]);
});

/** A ManualClaimer whose claims the server holds (`held_claims`) up to `holdMs`. */
class HoldingClaimer extends ManualClaimer {
  readonly hold: number;

  constructor(hold: number) {
    super();
    this.hold = hold;
  }

  holdMs(): number {
    return this.hold;
  }
}

test('a claim held by the server that comes back empty at the end of its hold is followed at once; one answered empty sooner backs off', async (t) => {
  const claimer = new HoldingClaimer(200);
  const loop = makeLoop(t, { spec: lane(['default'], 1), claimer, runs: new ManualRuns() });
  loop.start();
  await waitFor(t, () => claimer.requests.length === 1, 'the first claim');
  // Held for its whole time, then empty: the hold was the wait, so the next claim goes out at once.
  await new Promise((resolve) => setTimeout(resolve, 200));
  claimer.answer([]);
  await waitFor(t, () => claimer.requests.length === 2, 'the next claim, without the minute of backoff');
  t.is(loop.state, 'claiming');
  // Answered empty well before its hold ended (a release, a server that did not hold it): back off.
  claimer.answer([]);
  await waitFor(t, () => loop.state === 'waiting', 'the backoff');
  await settle();
  t.is(claimer.requests.length, 2, 'no claim during the backoff');
});

test('after a held claim that brought fewer runs than asked, the next claim waits a moment, so the runs start first', async (t) => {
  const claimer = new HoldingClaimer(20_000);
  const sentAt: number[] = [];
  const claim = claimer.claim.bind(claimer);
  claimer.claim = (request, signal) => {
    sentAt.push(performance.now());
    return claim(request, signal);
  };
  const loop = makeLoop(t, { spec: lane(['default'], 3), claimer, runs: new ManualRuns() });
  loop.start();
  await waitFor(t, () => claimer.requests.length === 1, 'the first claim');
  // A slot's worth of news during the claim: the lane claims again after it, whatever it brings.
  loop.workAvailable();
  const answeredAt = performance.now();
  claimer.answer(runs(1));
  await waitFor(t, () => claimer.requests.length === 2, 'the next claim');
  const waited = (sentAt[1] ?? answeredAt) - answeredAt;
  t.true(waited >= AFTER_SHORT_HELD_CLAIM_MS - 0.5, `the next claim went out ${waited.toFixed(2)} ms after the short reply`);
  t.is(claimer.requests[1]?.demand, 2);
  claimer.answer([]);
});

test("a claim's runs are started before the claim is reported: the report is not on their way", async (t) => {
  const claimer = new ManualClaimer();
  const active = new ManualRuns();
  const settled: ClaimSettled[] = [];
  /** How many claims had been reported when each run started. */
  const reportedAtStart: number[] = [];
  const loop = new Workloop({
    spec: lane(['default'], 2),
    claimer,
    startRun: (run) => {
      reportedAtStart.push(settled.length);
      return active.start(run);
    },
    backoff: SLOW_BACKOFF,
    logger: silent,
    onClaimSettled: (event) => settled.push(event),
  });
  t.teardown(async () => {
    // Stopped first: a run's end must not send a claim that nobody answers.
    const stopped = loop.stop({ force: true });
    active.finishAll();
    await stopped;
    if (loop.state !== 'stopped') throw new Error(`lane ${loop.id} left in state ${loop.state}`);
  });
  loop.start();
  await waitFor(t, () => claimer.requests.length === 1, 'the first claim');
  claimer.answer(runs(2));
  await waitFor(t, () => settled.length === 1, 'the claim to be reported');
  t.is(active.started.length, 2);
  t.deepEqual(reportedAtStart, [0, 0], 'both runs started before the claim was reported');
  t.like(settled[0], { outcome: 'runs', runs: 2, demand: 2 });
});
