/**
 * What a run reports as it executes, in order: run start, step start, logs,
 * step complete, run complete. The run's thread (runtime/) produces them, the
 * engine carries them to the worker (engine/types.ts re-exports them as part
 * of its contract), and the worker maps them to protocol messages. They live
 * here, below the engine, so that the runtime never imports the engine.
 */
import type { ExitReason, WebhookResponse } from '../protocol/index.ts';

/** Why the worker aborted a run; maps to the `kill`/`cancel` reasons. */
export interface EngineAbortReason {
  reason: 'kill' | 'cancel';
  errorType: string;
  message: string;
}

export interface EngineRunStart {
  type: 'run-start';
  timestamp: string;
  /** worker, node, runtime and adaptor versions. */
  versions: Record<string, string>;
}

export interface EngineStepStart {
  type: 'step-start';
  /** A fresh UUID for this step. */
  stepId: string;
  jobId: string;
  timestamp: string;
}

export interface EngineLog {
  type: 'log';
  level: string;
  /** `JOB` for job code, `R/T` for runtime notes. */
  source: string;
  message: unknown[];
  stepId?: string;
  timestamp: string;
}

export interface EngineStepComplete {
  type: 'step-complete';
  stepId: string;
  jobId: string;
  reason: ExitReason;
  errorType: string | null;
  errorMessage: string | null;
  /** The step's output state as JSON, or null when it was too large (`outputTooLarge`). */
  outputJson: string | null;
  outputTooLarge: boolean;
  mem: { job: number; system: number };
  durationMs: number;
  threadId?: number;
  webhookResponse?: WebhookResponse;
  timestamp: string;
}

export interface EngineRunComplete {
  type: 'run-complete';
  reason: ExitReason;
  errorType: string | null;
  errorMessage: string | null;
  /** Final state: the last step's state, or an object keyed by step id for several leaves. */
  finalState: unknown;
  /** Step id of the only leaf, when there is exactly one. */
  finalStepId?: string;
  timestamp: string;
}

export type EngineEvent = EngineRunStart | EngineStepStart | EngineLog | EngineStepComplete | EngineRunComplete;
