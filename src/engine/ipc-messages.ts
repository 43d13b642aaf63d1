/**
 * Messages between the engine (parent), its pooled children and the run
 * threads inside them. Parent ↔ child goes over the fork IPC channel with
 * `serialization: 'advanced'`; child ↔ thread over `postMessage`. Both are
 * structured clones, so these are plain data.
 */
import type { ExecutionEvent, ExecutionRequest } from '../runtime/execution-request.ts';
import type { RunEnd } from '../runtime/run-ends.ts';

/** Passed to the child as its only argv entry (JSON). */
export interface ChildConfig {
  /** Heap limit of warm spare threads: the engine's default run memory limit. */
  spareMemoryLimitMb: number;
  warmSpares: boolean;
  /** Adaptor entry files to import into spare threads ahead of time. */
  preload: string[];
  /** Absolute path of the bundled thread code (thread-bundle.ts); absent: load the sources. */
  threadEntry?: string;
  /**
   * Nice value of the threads of urgent runs and of the spares booted for
   * them: a child's first spare, and the next spare of a child whose last
   * run was urgent (engine `childNice`).
   */
  nice: number;
  /**
   * Nice value of other runs' threads and of the spares booted after them
   * (engine `backgroundNice`, at least `nice`). Absent: `nice`.
   */
  backgroundNice?: number;
  /** How often the child reads a run thread's mailbox while its first turn lasts (thread-mailbox.ts). Absent: `FIRST_TURN_POLL_MS`. */
  firstTurnPollMs?: number;
  /**
   * Boot a thread (the next spare, or a run's own) only once the parent
   * grants it (`boot-request` → `boot-permit`): the pool's boot gate
   * (`boot-gate.ts`). The child's first spare boots without asking.
   */
  bootPermits?: boolean;
}

export type ParentToChild =
  /** `urgent`: the run of a lane that pins its queues (engine `RunRequest.urgent`): its thread keeps `nice`. */
  | { type: 'run'; runId: string; request: ExecutionRequest; memoryLimitMb: number; urgent: boolean }
  | { type: 'stop-run'; runId: string }
  | { type: 'credential-reply'; runId: string; requestId: number; ok: true; body: unknown }
  | { type: 'credential-reply'; runId: string; requestId: number; ok: false; message: string }
  | { type: 'preload'; entryPaths: string[] }
  /** Answer to `boot-request`: the child may boot one thread now. */
  | { type: 'boot-permit' };

export type ChildToParent =
  | { type: 'ready' }
  /** The child needs a thread (its next spare, or one for the run it holds) and waits for `boot-permit`. */
  | { type: 'boot-request' }
  /**
   * A thread's boot ended (booted or died). `spare`: it booted and is the
   * child's warm spare, so the child's next run starts at once.
   */
  | { type: 'boot-ended'; spare: boolean }
  /** The run's thread took the run and begins executing the plan: the moment `run:start` reports. */
  | { type: 'run-started'; runId: string; timestamp: string }
  | { type: 'event'; runId: string; event: ExecutionEvent }
  /** A job of the run compiled in its thread before any job code ran there (engine `CompiledJobs`). */
  | { type: 'compiled'; runId: string; jobId: string; code: string }
  | { type: 'credential-request'; runId: string; requestId: number; credentialId: string }
  | { type: 'run-ended'; runId: string; end: RunEnd }
  /** During `stop-run`: every report of the run's thread has been sent (its mailbox read); the thread is being ended. */
  | { type: 'run-drained'; runId: string }
  /** Answer to `stop-run`: the run's thread is gone (or was already). */
  | { type: 'run-stopped'; runId: string };

export type ChildToThread =
  /** `nice`: the thread lowers its priority to it before the run, if it is below it (a spare booted for an urgent run given another). */
  | { type: 'run'; request: ExecutionRequest; nice: number }
  | { type: 'credential-reply'; requestId: number; ok: true; body: unknown }
  | { type: 'credential-reply'; requestId: number; ok: false; message: string }
  | { type: 'preload'; entryPaths: string[] }
  /** Posted once the thread has booted, and ignored there: its message path runs once before the run's message. */
  | { type: 'warm' };

export type ThreadToChild =
  | { type: 'ready' }
  /** Posted first thing on `run`, before the plan is compiled; `timestamp` is the thread's clock. */
  | { type: 'started'; timestamp: string }
  /** The run's first turn in the thread ended (its first `setImmediate`): the child reads the mailbox (thread-mailbox.ts). */
  | { type: 'first-turn-ended' }
  | { type: 'compiled'; jobId: string; code: string }
  | { type: 'event'; event: ExecutionEvent }
  | { type: 'credential-request'; requestId: number; credentialId: string }
  | { type: 'end'; end: RunEnd };

/** `workerData` of a run thread. */
export interface ThreadData {
  preload: string[];
  /** The compiled text of the child's last run's first job: the spare compiles it ahead (prepared-modules.ts). */
  expectedJob?: string;
  /** Nice value the thread takes first thing (`ChildConfig.nice` or `backgroundNice`); 0 leaves it at the child's. */
  nice: number;
  /** Where the thread writes its first turn's reports (thread-mailbox.ts); taken out of `workerData` first thing. */
  mailbox?: SharedArrayBuffer;
}
