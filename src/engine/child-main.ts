/**
 * Entry point of a pooled child process. The child runs at most one run at a
 * time, each in a fresh worker thread with the run's heap limit, and keeps
 * one warm spare thread booted (runtime loaded, known adaptors imported) so
 * the next run starts in milliseconds.
 *
 * States of the child as a whole: idle (no active run) ⇄ running (one active
 * run). A run leaves `running` exactly once: its thread reports its end, the
 * thread dies (OOM, exit, uncaught error), or the parent stops it. Messages of
 * a thread that is no longer the active one are dropped.
 */
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { endForOom, endForThreadExit, endForUncaught } from '../runtime/run-ends.ts';
import { ThreadMessageGuard } from './thread-message-guard.ts';
import type { RunEnd } from '../runtime/run-ends.ts';
import type { ChildConfig, ChildToParent, ChildToThread, ParentToChild, ThreadData, ThreadToChild } from './ipc-messages.ts';

const config = JSON.parse(process.argv[2] ?? '{}') as ChildConfig;

// The child's own thread keeps the worker's priority: it only relays messages between the worker
// and the run's thread, and each hop a run's first line waits for would otherwise queue behind every
// busy process on the machine. Each run thread takes `config.nice` itself as it boots (run-thread.ts):
// on Linux the nice value is per thread, so job code and the boots of spares stay below the worker.
const THREAD_URL = config.threadEntry ? pathToFileURL(config.threadEntry) : new URL('./run-thread.ts', import.meta.url);

const preloads = new Set(config.preload);

function send(message: ChildToParent): void {
  process.send?.(message);
}

/** One worker thread, from boot to death. */
class RunThread {
  readonly worker: Worker;
  readonly memoryLimitMb: number;
  readonly ready: Promise<boolean>;
  dead = false;
  /** Set when the thread is given a run. */
  onMessage: ((message: ThreadToChild) => void) | undefined;
  onDeath: ((end: RunEnd) => void) | undefined;

  constructor(memoryLimitMb: number) {
    this.memoryLimitMb = memoryLimitMb;
    const data: ThreadData = { preload: [...preloads], nice: config.nice };
    this.worker = new Worker(THREAD_URL, {
      resourceLimits: { maxOldGenerationSizeMb: memoryLimitMb },
      workerData: data,
      // No execArgv: the thread inherits the child's, including the permission model (an explicit list would drop it).
    });
    let markReady: (ok: boolean) => void = () => undefined;
    this.ready = new Promise((resolve) => (markReady = resolve));
    this.worker.on('message', (message: ThreadToChild) => {
      if (message.type === 'ready') markReady(true);
      else this.onMessage?.(message);
    });
    this.worker.on('error', (error: Error & { code?: string }) => {
      if (this.dead) return;
      this.dead = true;
      markReady(false);
      this.onDeath?.(
        error.code === 'ERR_WORKER_OUT_OF_MEMORY'
          ? endForOom(`the run's thread exhausted its heap limit of ${memoryLimitMb} MB`)
          : endForUncaught(error.name, error.message),
      );
    });
    this.worker.on('exit', (code) => {
      if (this.dead) return;
      this.dead = true;
      markReady(false);
      this.onDeath?.(endForThreadExit(code));
    });
  }

  post(message: ChildToThread): void {
    this.worker.postMessage(message);
  }

  /** Ends the thread; its death is expected, so nobody hears of it. */
  async terminate(): Promise<void> {
    this.onDeath = undefined;
    this.onMessage = undefined;
    this.dead = true;
    await this.worker.terminate();
  }
}

let spare: RunThread | undefined;
let active: { runId: string; thread: RunThread } | undefined;

function replenishSpare(): void {
  if (!config.warmSpares || spare) return;
  spare = new RunThread(config.spareMemoryLimitMb);
  const thread = spare;
  thread.onDeath = () => {
    if (spare === thread) spare = undefined;
  };
  // The parent prefers children whose spare is ready, so a run never waits on a boot another child has finished.
  void thread.ready.then((ok) => {
    if (ok && spare === thread) send({ type: 'spare-ready' });
  });
}

function finish(runId: string, end: RunEnd): void {
  if (!active || active.runId !== runId) return;
  const { thread } = active;
  active = undefined;
  send({ type: 'run-ended', runId, end });
  // Job code may leave timers or sockets behind: the thread never outlives its run.
  void thread.terminate();
  replenishSpare();
}

async function startRun(message: Extract<ParentToChild, { type: 'run' }>): Promise<void> {
  const { runId, request, memoryLimitMb } = message;
  let thread: RunThread;
  // A warm spare serves any run whose limit is at most its own: the run's own
  // limit is then held on the child's resident memory by the parent's sampler
  // (a thread's heap limit is fixed when it boots), and a small run on the
  // fast lane does not pay for a cold thread.
  if (spare && !spare.dead && spare.memoryLimitMb >= memoryLimitMb) {
    thread = spare;
    spare = undefined;
  } else {
    thread = new RunThread(memoryLimitMb);
  }
  active = { runId, thread };
  thread.onDeath = (end) => finish(runId, end);
  // Job code runs in the thread: nothing it posts is passed on unless it fits the run (thread-message-guard.ts).
  const guard = new ThreadMessageGuard(request);
  thread.onMessage = (m) => {
    if (active?.thread !== thread) return;
    if (m.type === 'compiled') {
      // Cached for other runs only while no job code can have run here (before the first step).
      if (guard.acceptsCompiled(m)) send({ type: 'compiled', runId, jobId: m.jobId, code: m.code });
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
  if (!(await thread.ready)) return;
  if (active?.thread !== thread) return;
  thread.post({ type: 'run', request });
  // The next spare boots when this run ends, not now: booting one costs
  // 0.1-0.4 s of CPU, and spent at a run's start it would compete
  // with the runs starting beside it (a burst, an urgent fast-lane run),
  // while the pool's other children already hold warm spares.
}

async function stopRun(runId: string): Promise<void> {
  if (active && active.runId === runId) {
    const { thread } = active;
    active = undefined;
    await thread.terminate();
  }
  send({ type: 'run-stopped', runId });
  replenishSpare();
}

process.on('message', (message: ParentToChild) => {
  switch (message.type) {
    case 'run':
      void startRun(message);
      return;
    case 'stop-run':
      void stopRun(message.runId);
      return;
    case 'credential-reply':
      if (active?.runId !== message.runId) return;
      active.thread.post(
        message.ok
          ? { type: 'credential-reply', requestId: message.requestId, ok: true, body: message.body }
          : { type: 'credential-reply', requestId: message.requestId, ok: false, message: message.message },
      );
      return;
    case 'preload': {
      // The parent sends the whole current set; new spares boot with exactly that.
      const fresh = message.entryPaths.filter((p) => !preloads.has(p));
      preloads.clear();
      for (const p of message.entryPaths) preloads.add(p);
      if (fresh.length && spare && !spare.dead) spare.post({ type: 'preload', entryPaths: fresh });
      return;
    }
  }
});

// The parent is gone: nothing would ever read our results.
process.on('disconnect', () => process.exit(0));
// Only the worker decides a child's fate (it ends runs over IPC and kills with SIGKILL). A SIGTERM or
// SIGINT sent to every process at once (systemd's default KillMode=control-group, `kill -TERM -PGID`
// from outside our session) must not crash the runs the worker is draining.
for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, () => undefined);

replenishSpare();
send({ type: 'ready' });
