/**
 * Every way a run can end, mapped once to a protocol reason and error type
 * (PROTOCOL.md, "Reasons"; ERROR_TYPES). The thread, the child and the parent
 * each detect different ends; all of them build the outcome here so the same
 * end is always reported the same way.
 */
import { ERROR_TYPES } from '../protocol/reasons.ts';
import type { ExitReason } from '../protocol/reasons.ts';
import type { EngineAbortReason, EngineRunComplete } from './execution-events.ts';

export type RunEnd = Omit<EngineRunComplete, 'type' | 'timestamp'>;

export interface StepEnd {
  reason: ExitReason;
  errorType: string | null;
  errorMessage: string | null;
}

function end(reason: ExitReason, errorType: string | null, errorMessage: string | null, finalState: unknown = null): RunEnd {
  return { reason, errorType, errorMessage, finalState };
}

export function endForSuccess(finalState: unknown, finalStepId: string | undefined): RunEnd {
  const out = end('success', null, null, finalState);
  if (finalStepId !== undefined) out.finalStepId = finalStepId;
  return out;
}

/** A leaf step failed: the run fails with that step's error. */
export function endForFailedLeaf(step: StepEnd, finalState: unknown, finalStepId: string | undefined): RunEnd {
  const out = end('fail', step.errorType, step.errorMessage, finalState);
  if (finalStepId !== undefined) out.finalStepId = finalStepId;
  return out;
}

export function endForTimeout(timeoutMs: number): RunEnd {
  return end('kill', ERROR_TYPES.timeout, `Run exceeded its timeout of ${timeoutMs} ms`);
}

export function endForOom(detail: string): RunEnd {
  return end('kill', ERROR_TYPES.oom, `Run exceeded its memory limit: ${detail}`);
}

export function isEngineAbortReason(value: unknown): value is EngineAbortReason {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return (v['reason'] === 'kill' || v['reason'] === 'cancel') && typeof v['errorType'] === 'string' && typeof v['message'] === 'string';
}

/** The worker aborted the run; `signal.reason` chooses the type when it is an `EngineAbortReason`. */
export function endForAbort(reason: unknown): RunEnd {
  if (isEngineAbortReason(reason)) return end(reason.reason, reason.errorType, reason.message);
  return end('kill', ERROR_TYPES.shutdown, 'Run was stopped by the worker');
}

export function endForEngineStopped(): RunEnd {
  return end('kill', ERROR_TYPES.shutdown, 'The engine stopped before the run finished');
}

/** Job code (or an adaptor) called `process.exit()` inside the run's thread. */
export function endForThreadExit(code: number): RunEnd {
  return end('crash', ERROR_TYPES.exit, `process.exit(${code}) was called during the run`);
}

/** An error nobody caught: thrown in a callback, an unhandled rejection. */
export function endForUncaught(name: string, message: string): RunEnd {
  return end('crash', ERROR_TYPES.runtime, `Uncaught ${name}: ${message}`);
}

const OOM_TEXT = /heap out of memory|Allocation failed|ERR_WORKER_OUT_OF_MEMORY|Reached heap limit/i;

/** The whole child process went away during the run. */
export function endForChildExit(code: number | null, signal: string | null, stderrTail: string): RunEnd {
  if (OOM_TEXT.test(stderrTail)) return endForOom('the run\'s process ran out of heap');
  const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
  return end('crash', ERROR_TYPES.childCrash, `The run's process ${how}`);
}

export function endForCompileError(message: string): RunEnd {
  return end('crash', ERROR_TYPES.compile, message);
}

export function endForAdaptorError(message: string): RunEnd {
  return end('exception', ERROR_TYPES.adaptor, message);
}

export function endForCredentialError(message: string): RunEnd {
  return end('exception', ERROR_TYPES.credential, message);
}

export function endForPlanError(message: string): RunEnd {
  return end('exception', ERROR_TYPES.plan, message);
}

interface RuntimeErrorLike {
  name?: unknown;
  message?: unknown;
  severity?: unknown;
  subtype?: unknown;
  type?: unknown;
}

function asRuntimeError(error: unknown): RuntimeErrorLike {
  return typeof error === 'object' && error !== null ? (error as RuntimeErrorLike) : { message: String(error) };
}

/** The type @openfn/runtime reports for an error (its own reporter's rule). */
export function errorTypeOf(error: unknown): string {
  const e = asRuntimeError(error);
  for (const v of [e.subtype, e.type, e.name]) if (typeof v === 'string' && v && v !== 'Error') return v;
  return ERROR_TYPES.job;
}

function messageOf(error: unknown): string {
  const e = asRuntimeError(error);
  return typeof e.message === 'string' && e.message ? e.message : String(error);
}

/** A step's reason from an error @openfn/runtime reported for it (`severity`). */
export function stepEndForError(error: unknown): StepEnd {
  const e = asRuntimeError(error);
  const reason: ExitReason = e.severity === 'crash' ? 'crash' : e.severity === 'kill' ? 'kill' : e.severity === 'exception' ? 'exception' : 'fail';
  return { reason, errorType: errorTypeOf(error), errorMessage: messageOf(error) };
}

/** A step whose job wrote `state.errors[jobId]` without throwing. */
export function stepEndForStateError(written: unknown): StepEnd {
  const e = asRuntimeError(written);
  const type = typeof e.type === 'string' ? e.type : typeof e.name === 'string' ? e.name : ERROR_TYPES.job;
  return { reason: 'fail', errorType: type, errorMessage: typeof e.message === 'string' ? e.message : JSON.stringify(written) };
}

/** What @openfn/runtime threw out of `run()`: by severity, imports are adaptor problems. */
export function endForRuntimeThrow(error: unknown): RunEnd {
  const e = asRuntimeError(error);
  if (e.name === 'ImportError') return endForAdaptorError(messageOf(error));
  // The runtime refused the plan's graph (an edge to a missing job, a cycle): the plan is at fault, not the code.
  if (e.name === 'ValidationError') return endForPlanError(messageOf(error));
  if (Array.isArray(error)) return end('crash', ERROR_TYPES.runtime, error.map(messageOf).join('; '));
  const step = stepEndForError(error);
  const reason = step.reason === 'fail' ? 'crash' : step.reason;
  return end(reason, e.severity === undefined ? ERROR_TYPES.runtime : step.errorType, step.errorMessage);
}
