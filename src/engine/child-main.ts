/**
 * Entry point of a pooled child process. The child runs at most one run at a
 * time, each in a fresh worker thread with the run's heap limit, and keeps
 * one warm spare thread booted (runtime loaded, known adaptors imported) so
 * the next run starts in milliseconds.
 *
 * States of the child as a whole, in a `StateMachine` (a move it does not
 * allow throws `InvalidTransitionError`, which crashes the child: the parent
 * then ends its run `crash`):
 *   idle    → running  (`run` with a warm spare to take; `running` carries the run's id and its thread)
 *   idle    → waiting  (`run` without one: the run waits for the parent's boot permit, then boots its thread)
 *   waiting → running  (the permit came; the run's thread is booting)
 *   waiting → idle     (the parent stopped the run first)
 *   running → idle     (its thread reports its end, the thread dies (OOM, exit,
 *                       uncaught error), or the parent stops it: exactly once)
 * With `config.bootPermits` every thread boot after the first spare waits for
 * the parent's `boot-permit` (the pool's boot gate, `boot-gate.ts`), and the
 * end of each boot is reported (`boot-ended`), so the parent knows how many
 * boots share the machine's cores.
 * Messages of a thread that is no longer the running one are dropped. Each
 * thread has its own: booting → ready → dead, or booting → dead.
 */
import { pathToFileURL } from 'node:url';
import { endForUncaught } from '../runtime/run-ends.ts';
import { StateMachine } from '../state-machine.ts';
import type { StateLogger } from '../state-machine.ts';
import { RunThread } from './child-thread.ts';
import { ThreadMessageGuard } from './thread-message-guard.ts';
import { FIRST_TURN_POLL_MS } from './thread-mailbox.ts';
import type { RunEnd } from '../runtime/run-ends.ts';
import type { ExecutionRequest } from '../runtime/execution-request.ts';
import type { ChildConfig, ChildToParent, ParentToChild, ThreadData, ThreadToChild } from './ipc-messages.ts';

const config = JSON.parse(process.argv[2] ?? '{}') as ChildConfig;

// The child's own thread keeps the worker's priority: it only relays messages between the worker
// and the run's thread, and each hop a run's first line waits for would otherwise queue behind every
// busy process on the machine. Each run thread takes its nice value itself as it boots (run-thread.ts):
// on Linux the nice value is per thread, so job code and the boots of spares stay below the worker.
// Two levels: urgent runs (a lane that pins its queues) and the spares booted for them take
// `config.nice`; other runs and the spares booted after them `config.backgroundNice`, lower still, so
// that when long runs end together and their children boot new spares, the fast lane's run is not
// sharing the cores with those boots as an equal. A thread can lower its own priority but, without
// privileges, never raise it again: so the class of a spare is chosen when it boots, from the last
// run of its child (a pinned lane's child frees and refills per run), and the pool hands urgent runs
// the children whose spares booted at `config.nice` (child-pool.ts, `#pick`).
const BACKGROUND_NICE = Math.max(config.nice, config.backgroundNice ?? config.nice);
const THREAD_URL = config.threadEntry ? pathToFileURL(config.threadEntry) : new URL('./run-thread.ts', import.meta.url);

const preloads = new Set(config.preload);

// The child keeps no log of its own: its stdout and stderr go to the parent's debug log, and stderr's
// tail names the cause when the child dies, so state changes must not fill it. The parent logs each
// child's state as it sees it (pooled-child.ts).
const unlogged: StateLogger = { debug: () => undefined };

function send(message: ChildToParent): void {
  process.send?.(message);
}

type ChildState =
  | { readonly kind: 'idle' }
  | { readonly kind: 'waiting'; readonly runId: string }
  | { readonly kind: 'running'; readonly runId: string; readonly thread: RunThread };

const state = new StateMachine<ChildState>({
  name: 'child',
  initial: { kind: 'idle' },
  transitions: { idle: ['running', 'waiting'], waiting: ['running', 'idle'], running: ['idle'] },
  logger: unlogged,
});
/**
 * The compiled text of the first job of the last run here, which the next
 * spare compiles ahead (prepared-modules.ts): the next run is often the same.
 */
let expectedJob: string | undefined;

/** The job a run starts with: its start node, or the job its start trigger leads to. */
function firstJobId(request: ExecutionRequest): string | undefined {
  if (request.jobs.some((job) => job.id === request.startingNodeId)) return request.startingNodeId;
  return request.edges.find((edge) => edge.source_trigger_id === request.startingNodeId)?.target_job_id;
}

/** The warm thread the next run takes: not a state of the child, which boots one whatever it is doing. */
let spare: RunThread | undefined;
/** The nice value of the next spare: `config.nice` until a run that is not urgent, then as the last run was. */
let spareNice = config.nice;
/** A `boot-request` is out and its `boot-permit` has not come (`config.bootPermits`). */
let permitAsked = false;
/**
 * A run waiting for a thread of its own: called with the permit when it
 * comes. Handled as the permit arrives, never in a later microtask: the
 * `run` message may be read in the same turn as the permit before it.
 */
let runWaitingForThread: (() => void) | undefined;

/** The run in flight, if it is `runId`. */
function running(runId: string): Extract<ChildState, { kind: 'running' }> | undefined {
  const current = state.when('running');
  return current?.runId === runId ? current : undefined;
}

/** Boots a thread; the parent hears when its boot ends (its boot gate counts the boot until then). */
function bootThread(memoryLimitMb: number, asSpare: boolean, nice: number): RunThread {
  const data: ThreadData = { preload: [...preloads], nice };
  if (expectedJob !== undefined) data.expectedJob = expectedJob;
  const thread = new RunThread(THREAD_URL, memoryLimitMb, data);
  if (asSpare) {
    spare = thread;
    thread.onDeath = () => {
      if (spare === thread) spare = undefined;
    };
  }
  // `spare`: the parent prefers children whose spare is ready, so a run never waits on a boot another child has finished.
  void thread.ready.then((ok) => send({ type: 'boot-ended', spare: ok && spare === thread }));
  return thread;
}

/** Asks the parent for a boot (once at a time); without `bootPermits` the permit is there at once. */
function askBoot(): void {
  if (config.bootPermits !== true) {
    usePermit();
    return;
  }
  if (permitAsked) return;
  permitAsked = true;
  send({ type: 'boot-request' });
}

/** A boot may start: the waiting run's thread, else the next spare, else it goes back to the parent. */
function usePermit(): void {
  const run = runWaitingForThread;
  runWaitingForThread = undefined;
  if (run) run();
  else if (config.warmSpares && !spare) bootThread(config.spareMemoryLimitMb, true, spareNice);
  else send({ type: 'boot-ended', spare: false });
}

/** Boots the next spare: the first one at once, later ones (after a run) when the parent's boot gate lets them. */
function replenishSpare(first = false): void {
  if (!config.warmSpares || spare || permitAsked) return;
  if (first) bootThread(config.spareMemoryLimitMb, true, spareNice);
  else askBoot();
}

function finish(runId: string, end: RunEnd): void {
  const run = running(runId);
  if (!run) return;
  const { thread } = run;
  state.to({ kind: 'idle' });
  send({ type: 'run-ended', runId, end });
  // Job code may leave timers or sockets behind: the thread never outlives its run.
  void thread.terminate();
  replenishSpare();
}

function startRun(message: Extract<ParentToChild, { type: 'run' }>): void {
  const { runId, memoryLimitMb, urgent } = message;
  spareNice = urgent ? config.nice : BACKGROUND_NICE;
  // A warm spare serves any run whose limit is at most its own: the run's own
  // limit is then held on the child's resident memory by the parent's sampler
  // (a thread's heap limit is fixed when it boots), and a small run on the
  // fast lane does not pay for a cold thread. A booting spare is taken too:
  // its boot is further along than any other.
  if (spare && !spare.dead && spare.memoryLimitMb >= memoryLimitMb) {
    const thread = spare;
    spare = undefined;
    runOn(thread, message);
    return;
  }
  state.to({ kind: 'waiting', runId });
  runWaitingForThread = () => {
    // Stopped while it waited: the permit boots the next spare instead.
    if (state.when('waiting')?.runId !== runId) usePermit();
    else runOn(bootThread(memoryLimitMb, false, spareNice), message);
  };
  askBoot();
}

/**
 * Hands the run to `thread`. A booted thread (a warm spare, nearly always) is
 * posted the run in this same turn, before anything else is set up: every
 * step before the post is on the way to the run's first line. A booting one
 * is posted it once it is ready.
 */
function runOn(thread: RunThread, message: Extract<ParentToChild, { type: 'run' }>): void {
  const { runId, request } = message;
  state.to({ kind: 'running', runId, thread });
  const post = (): void => thread.post({ type: 'run', request, nice: message.urgent ? thread.nice : BACKGROUND_NICE });
  // The thread's replies arrive in a later turn of the event loop, when its listeners below are set.
  if (thread.booted) post();
  const current = (): boolean => state.when('running')?.thread === thread;
  // What the thread wrote to its mailbox in its first turn (thread-mailbox.ts), in order: before anything
  // it posts, every FIRST_TURN_POLL_MS while that turn lasts, and before its death is reported.
  const takeMailbox = (): void => {
    for (const record of thread.mailbox.take()) {
      if (!current()) return;
      if (isReport(record)) handle(record);
      else finish(runId, endForUncaught('SandboxViolation', "the run's thread wrote a report that is not one"));
    }
  };
  // The first read comes soon (a quarter of the interval, after the first turn of most runs), so that
  // a run stopped from outside early in a long first turn has passed on its start and its step.
  const pollMs = config.firstTurnPollMs ?? FIRST_TURN_POLL_MS;
  let poll = setTimeout(function read(): void {
    if (!current()) return;
    takeMailbox();
    poll = setTimeout(read, pollMs);
  }, pollMs / 4);
  thread.onDeath = (end) => {
    clearTimeout(poll);
    takeMailbox();
    if (current()) finish(runId, end);
  };
  thread.onStop = () => {
    clearTimeout(poll);
    takeMailbox();
  };
  // Job code runs in the thread: nothing it posts is passed on unless it fits the run (thread-message-guard.ts).
  const guard = new ThreadMessageGuard(request);
  const firstJob = firstJobId(request);
  expectedJob = request.jobs.find((job) => job.id === firstJob)?.compiled;
  thread.onMessage = (m) => {
    if (!current()) return;
    // A post closes the mailbox: it is the newest of all.
    clearTimeout(poll);
    takeMailbox();
    if (current()) handle(m);
  };
  const handle = (m: ThreadToChild): void => {
    if (m.type === 'compiled') {
      // Cached for other runs only while no job code can have run here (before the first step).
      if (!guard.acceptsCompiled(m)) return;
      send({ type: 'compiled', runId, jobId: m.jobId, code: m.code });
      if (m.jobId === firstJob) expectedJob = m.code;
      return;
    }
    const verdict = guard.check(m);
    if (!verdict.ok) {
      finish(runId, endForUncaught('SandboxViolation', `the run's thread posted ${verdict.rule}`));
      return;
    }
    if (m.type === 'event') send({ type: 'event', runId, event: m.event });
    else if (m.type === 'started') send({ type: 'run-started', runId, timestamp: m.timestamp });
    else if (m.type === 'credential-request') send({ type: 'credential-request', runId, requestId: m.requestId, credentialId: m.credentialId });
    else if (m.type === 'end') finish(runId, m.end);
  };
  if (thread.booted) return;
  void thread.ready.then((ok) => {
    if (ok && state.when('running')?.thread === thread) post();
  });
  // The next spare boots when this run ends, not now: booting one costs
  // 0.1-0.4 s of CPU, and spent at a run's start it would compete
  // with the runs starting beside it (a burst, an urgent fast-lane run),
  // while the pool's other children already hold warm spares.
}

async function stopRun(runId: string): Promise<void> {
  // What the thread still holds in its mailbox goes out first: the parent settles the stop once it has it.
  running(runId)?.thread.onStop?.();
  const run = running(runId);
  if (run) state.to({ kind: 'idle' });
  else if (state.when('waiting')?.runId === runId) state.to({ kind: 'idle' });
  send({ type: 'run-drained', runId });
  await run?.thread.terminate();
  send({ type: 'run-stopped', runId });
  replenishSpare();
}

process.on('message', (message: ParentToChild) => {
  switch (message.type) {
    case 'run':
      startRun(message);
      return;
    case 'stop-run':
      void stopRun(message.runId);
      return;
    case 'credential-reply': {
      const run = running(message.runId);
      if (!run) return;
      run.thread.post(
        message.ok
          ? { type: 'credential-reply', requestId: message.requestId, ok: true, body: message.body }
          : { type: 'credential-reply', requestId: message.requestId, ok: false, message: message.message },
      );
      return;
    }
    case 'preload': {
      // The parent sends the whole current set; new spares boot with exactly that.
      const fresh = message.entryPaths.filter((p) => !preloads.has(p));
      preloads.clear();
      for (const p of message.entryPaths) preloads.add(p);
      if (fresh.length && spare && !spare.dead) spare.post({ type: 'preload', entryPaths: fresh });
      return;
    }
    case 'boot-permit':
      permitAsked = false;
      usePermit();
      return;
  }
});

// The parent is gone: nothing would ever read our results.
process.on('disconnect', () => process.exit(0));
// Only the worker decides a child's fate (it ends runs over IPC and kills with SIGKILL). A SIGTERM or
// SIGINT sent to every process at once (systemd's default KillMode=control-group, `kill -TERM -PGID`
// from outside our session) must not crash the runs the worker is draining.
for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, () => undefined);

replenishSpare(true);
send({ type: 'ready' });

/** A record of a thread's mailbox that has the shape of a report it may write there (the guard checks the rest). */
function isReport(record: unknown): record is ThreadToChild {
  if (typeof record !== 'object' || record === null) return false;
  const { type } = record as { type?: unknown };
  if (type === 'started') return typeof (record as { timestamp?: unknown }).timestamp === 'string';
  if (type === 'compiled') return typeof (record as { jobId?: unknown }).jobId === 'string' && typeof (record as { code?: unknown }).code === 'string';
  if (type !== 'event') return false;
  const { event } = record as { event?: unknown };
  return typeof event === 'object' && event !== null && typeof (event as { type?: unknown }).type === 'string';
}
