/**
 * Executes one run's plan with @openfn/runtime, inside the run's own thread.
 *
 * Lightning's plan (triggers, jobs, edges) becomes the runtime's workflow;
 * each job body is compiled against its adaptor's exports; the runtime's
 * notifications become step events; job `console.*` and adaptor console
 * output become log events. Payload limits are applied here, before anything
 * leaves the thread. Returns how the run ended; never throws.
 */
import { randomUUID } from 'node:crypto';
import { threadId } from 'node:worker_threads';
import type { Logger as RuntimeLogger } from '@openfn/logger';
import run from '@openfn/runtime';
import type { ExecutionPlan, Job, Options as RuntimeOptions, NotifyEvents, NotifyJobCompletePayload, NotifyJobErrorPayload, StepEdge, Trigger } from '@openfn/runtime';
import { timestampMicros } from '../protocol/timestamp.ts';
import type { PlanEdge } from '../protocol/index.ts';
import {
  endForAdaptorError,
  endForCompileError,
  endForCredentialError,
  endForFailedLeaf,
  endForRuntimeThrow,
  endForSuccess,
  stepEndForError,
  stepEndForStateError,
} from './run-ends.ts';
import type { RunEnd, StepEnd } from './run-ends.ts';
import { exportedNames, importAdaptor } from './adaptor-import.ts';
import { compileJob } from './compile.ts';
import { CompileError } from './compile-error.ts';
import type { ExecutionEvent, ExecutionRequest } from './execution-request.ts';
import { sizeOutput, toPlain } from './payload-limits.ts';
import type { SizedOutput } from './payload-limits.ts';
import { OversizedStateGuard, isOversizedPlaceholder } from './oversized-state.ts';
import { jobLinker } from './prepared-links.ts';
import { jobLogLevel, runLoggers, sanitizePolicy } from './run-loggers.ts';
import type { JobLinker } from './prepared-links.ts';

/** Names under which a run's jobs see the oversized-state guard's two operations. */
const PUT_BACK_GLOBAL = '__lanesPutBack';
const KEEP_ASIDE_GLOBAL = '__lanesKeepAside';

export interface ExecutionHooks {
  emit(event: ExecutionEvent): void;
  /** Asks the parent for a credential body; rejects when it cannot be had. */
  fetchCredential(credentialId: string): Promise<unknown>;
  /** A job's body was compiled here (it came without `compiled`): the engine may keep the text. */
  compiled?(jobId: string, code: string): void;
}

/** Thrown into the runtime when a credential cannot be fetched, recognised on the way out. */
class CredentialFetchError extends Error {
  override name = 'CredentialFetchError';
}

function edgesFrom(sourceId: string, edges: readonly PlanEdge[]): Record<string, StepEdge> | undefined {
  const next: Record<string, StepEdge> = {};
  for (const edge of edges) {
    if ((edge.source_trigger_id ?? edge.source_job_id) !== sourceId) continue;
    const condition = edge.condition ?? 'always';
    // `true` is the runtime's "always follow" without compiling a condition function for it; the
    // runtime skips an object edge without a condition, so a missing one means always.
    next[edge.target_job_id] = condition === 'always' && edge.enabled !== false ? true : { condition, disabled: edge.enabled === false };
  }
  return Object.keys(next).length ? next : undefined;
}



interface StepRecord {
  stepId: string;
  jobId: string;
}

export async function executePlan(request: ExecutionRequest, hooks: ExecutionHooks): Promise<RunEnd> {
  const loggers = runLoggers(jobLogLevel(request.jobLogLevel), sanitizePolicy(request.sanitize), { emit: hooks.emit, limitMb: request.logPayloadLimitMb });
  const { job: jobLogger, runtime: runtimeLogger, route } = loggers;
  /** The step open now; its id goes on every log line (the route's copy). */
  let current: StepRecord | undefined;
  const openStep = (step: StepRecord | undefined): void => {
    current = step;
    route.stepId = step?.stepId;
  };

  // Oversized outputs are kept out of the runtime's clones (oversized-state.ts).
  const guard = new OversizedStateGuard(request.payloadLimitMb, request.statePropsToRemove);
  // Compile every job first: a syntax error anywhere ends the run before any step.
  const steps: Array<Job | Trigger> = [];
  for (const job of request.jobs) {
    let exports: string[] = [];
    if (job.adaptor) {
      try {
        const namespace = await importAdaptor(job.adaptor.entryPath);
        // Compiled code already names its imports; listing hundreds of exports is only for the compiler.
        if (job.compiled === undefined) exports = exportedNames(namespace);
      } catch (error) {
        return endForAdaptorError(`could not load adaptor ${job.adaptor.specifier}: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
    let code: string;
    try {
      if (job.compiled !== undefined) code = job.compiled;
      else {
        code = compileJob(job.body, {
          name: job.name ?? job.id,
          adaptors: job.adaptor ? [{ importFrom: job.adaptor.entryPath, exports }] : [],
          bracket: [PUT_BACK_GLOBAL, KEEP_ASIDE_GLOBAL],
        }).code;
        hooks.compiled?.(job.id, code);
      }
    } catch (error) {
      if (error instanceof CompileError) {
        const where = error.line === undefined ? '' : ` (line ${error.line})`;
        return endForCompileError(`${error.message}${where}`);
      }
      return endForCompileError(String(error));
    }
    const step: Job = { id: job.id, expression: code };
    if (job.name) step.name = job.name;
    if (job.credentialId) step.configuration = job.credentialId;
    const next = edgesFrom(job.id, request.edges);
    if (next) step.next = next;
    steps.push(step);
  }
  for (const id of request.triggerIds) {
    const trigger: Trigger = { id };
    const next = edgesFrom(id, request.edges);
    if (next) trigger.next = next;
    steps.push(trigger);
  }

  const leaves: Array<StepRecord & { end: StepEnd; tooLarge: boolean }> = [];
  const completeStep = (jobId: string, end: StepEnd, state: unknown, payload: { duration: number; next: string[] }, mem: { job: number; system: number }): void => {
    const step = current && current.jobId === jobId ? current : { stepId: randomUUID(), jobId };
    const output: SizedOutput = isOversizedPlaceholder(state) ? { json: null, tooLarge: true, bytes: state.bytes } : sizeOutput(state, request.payloadLimitMb);
    if (output.tooLarge) {
      runtimeLogger.warn(`Step output of ${output.bytes} bytes exceeds the payload limit of ${request.payloadLimitMb} MB and will not be sent`);
    }
    const event: ExecutionEvent = {
      type: 'step-complete',
      stepId: step.stepId,
      jobId,
      reason: end.reason,
      errorType: end.errorType,
      errorMessage: end.errorMessage,
      outputJson: output.json,
      outputTooLarge: output.tooLarge,
      mem,
      durationMs: payload.duration,
      threadId,
      timestamp: timestampMicros(),
    };
    const webhook = webhookResponseOf(state);
    if (webhook) event.webhookResponse = webhook;
    hooks.emit(event);
    if (payload.next.length === 0) leaves.push({ ...step, end, tooLarge: output.tooLarge });
    openStep(undefined);
  };

  const notify = (name: NotifyEvents, payload: unknown): void => {
    if (name === 'init-start') {
      const { jobId } = payload as { jobId: string };
      const step = { stepId: randomUUID(), jobId };
      openStep(step);
      hooks.emit({ type: 'step-start', stepId: step.stepId, jobId, timestamp: timestampMicros() });
    } else if (name === 'job-complete') {
      const p = payload as NotifyJobCompletePayload;
      const written = errorsOf(p.state)?.[p.jobId];
      const end: StepEnd = written ? stepEndForStateError(written) : { reason: 'success', errorType: null, errorMessage: null };
      completeStep(p.jobId, end, p.state, p, { job: p.mem.job, system: p.mem.system });
    } else if (name === 'job-error') {
      const p = payload as NotifyJobErrorPayload;
      const { heapUsed, rss } = process.memoryUsage();
      completeStep(p.jobId, stepEndForError(p.error), p.state, p, { job: heapUsed, system: rss });
    }
  };

  const plan: ExecutionPlan = { id: request.runId, workflow: { steps }, options: { start: request.startingNodeId } };
  let result: unknown;
  try {
    result = await run(plan, request.input as never, {
      logger: runtimeLogger as RuntimeLogger,
      jobLogger: jobLogger as RuntimeLogger,
      statePropsToRemove: [...request.statePropsToRemove],
      globals: { [PUT_BACK_GLOBAL]: guard.putBack, [KEEP_ASIDE_GLOBAL]: guard.keepAside },
      // The esm hook registers a loader thread per call; adaptors are imported by absolute path anyway.
      disableEsmHook: true,
      // Job code links only its adaptors, through the modules made ahead in the warm spare (prepared-links.ts).
      linker: linkerOptions(jobLinker(new Set(request.jobs.flatMap((job) => (job.adaptor ? [job.adaptor.entryPath] : []))))),
      callbacks: {
        notify,
        resolveCredential: async (credentialId: string) => {
          try {
            return await hooks.fetchCredential(credentialId);
          } catch (error) {
            throw new CredentialFetchError(`could not fetch credential ${credentialId}: ${error instanceof Error ? error.message : String(error)}`);
          }
        },
      },
    });
  } catch (error) {
    if (error instanceof CredentialFetchError) return endForCredentialError(error.message);
    return endForRuntimeThrow(error);
  }

  const only = leaves.length === 1 ? leaves[0] : undefined;
  // With several leaves, one kept aside as oversized makes the whole final state too large too.
  const anyTooLarge = leaves.some((leaf) => leaf.tooLarge);
  const finalState = only ? (only.tooLarge ? null : (result ?? null)) : anyTooLarge || sizeOutput(result, request.payloadLimitMb).tooLarge ? null : (result ?? null);
  const failed = leaves.find((l) => l.end.reason !== 'success');
  if (failed) return endForFailedLeaf(failed.end, finalState, only?.stepId);
  return endForSuccess(finalState, only?.stepId);
}

/**
 * The runtime's linker options carrying our linker: the runtime calls `linker.linker(specifier, context)`
 * for every import of job code, though its typings name only the options of its own linker.
 */
function linkerOptions(linker: JobLinker): NonNullable<RuntimeOptions['linker']> & { linker: JobLinker } {
  return { linker };
}

function errorsOf(state: unknown): Record<string, unknown> | undefined {
  if (typeof state !== 'object' || state === null) return undefined;
  const errors = (state as { errors?: unknown }).errors;
  return typeof errors === 'object' && errors !== null ? (errors as Record<string, unknown>) : undefined;
}

function webhookResponseOf(state: unknown): { status?: number; body?: unknown } | undefined {
  if (typeof state !== 'object' || state === null) return undefined;
  const w = (state as { webhookResponse?: unknown }).webhookResponse;
  if (typeof w !== 'object' || w === null) return undefined;
  const { status, body } = w as { status?: unknown; body?: unknown };
  const out: { status?: number; body?: unknown } = {};
  if (typeof status === 'number') out.status = status;
  if (body !== undefined) out.body = toPlain(body);
  return out;
}
