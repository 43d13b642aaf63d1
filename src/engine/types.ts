/**
 * The contract between the worker and the engine. The worker hands the engine
 * a plan fetched from the server plus its input; the engine runs it in a
 * memory-limited child process and calls `onEvent` for everything that
 * happens, strictly in order. The worker turns those events into protocol
 * messages (PROTOCOL.md, `run:<id>`). Nothing here knows about sockets.
 */
import type { RunPlan } from '../protocol/index.ts';
import type { EngineEvent, EngineRunComplete } from '../runtime/execution-events.ts';

export type {
  EngineAbortReason,
  EngineEvent,
  EngineLog,
  EngineRunComplete,
  EngineRunStart,
  EngineStepComplete,
  EngineStepStart,
} from '../runtime/execution-events.ts';

/** Limits for one run, already resolved from the plan's options and the worker config. */
export interface RunLimits {
  /** Kill the run (reason `kill`, `TimeoutError`) after this long. */
  timeoutMs: number;
  /** Heap limit of the run's thread; the child's RSS is also policed against it. */
  memoryLimitMb: number;
  /** A step's output larger than this becomes `DATACLIP_TOO_LARGE`. */
  payloadLimitMb: number;
  /** A log line larger than this is truncated with a marker. */
  logPayloadLimitMb: number;
  /** Top-level keys removed from every step's output state. */
  statePropsToRemove: readonly string[];
}

export interface RunRequest {
  runId: string;
  plan: RunPlan;
  /** The run's input (the parsed dataclip). */
  input: unknown;
  limits: RunLimits;
  /** Fetches a credential body by id (over `fetch:credential`); rejects when it cannot. */
  fetchCredential: (credentialId: string) => Promise<unknown>;
  /**
   * Aborting ends the run at once: the thread is terminated and the run
   * completes with reason `kill`. `signal.reason` may be an `EngineAbortReason`
   * to choose the error type (`ShutdownError`, `CancelError`).
   */
  signal?: AbortSignal;
  /**
   * The run must not wait for a thread's boot (the worker: a run of a lane
   * that pins its queues, like `fast_lane`): it takes a booted child first,
   * including the `reservedWarmChildren` other runs leave to it, and its
   * boots go first through the boot gate. Default false.
   */
  urgent?: boolean;
  /** Called for every event, in order. Must not throw; slow consumers queue on their side. */
  onEvent: (event: EngineEvent) => void;
}

/** What `execute` resolves with: the same as the last event. It never rejects. */
export type RunOutcome = EngineRunComplete;

/** The engine as the worker sees it. */
export interface RunExecutor {
  execute(request: RunRequest): Promise<RunOutcome>;
  /** Hints that a lane will soon need this adaptor, so a warm spare can preload it. */
  preload?(adaptors: readonly string[]): void;
  /** The resident memory of the process running the run, as last sampled, in bytes. */
  runRssBytes?(runId: string): number | undefined;
  /** Child processes alive now (retired idle children are not counted). */
  childCount?(): number;
}
