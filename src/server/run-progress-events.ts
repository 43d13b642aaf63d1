/**
 * The progress events of `run:<id>`: `run:start`, `step:start`,
 * `step:complete` and `run:complete`, each validated field by field and
 * idempotent by its key (`run:start:<attempt>`, `step:start:<step_id>`,
 * `step:complete:<step_id>`, `run:complete:<attempt>`).
 */
import { DATACLIP_TOO_LARGE, isExitReason, runStateForReason } from '../protocol/index.ts';
import type { WebhookResponse } from '../protocol/index.ts';
import { error, ok } from './phoenix-channel.ts';
import type { ChannelReply } from './phoenix-channel.ts';
import { FieldErrorCollector, isNonEmptyString, isOptionalString, isRecord } from './field-errors.ts';
import { ALREADY_COMPLETED, SUPERSEDED, timeFrom } from './run-event-context.ts';
import type { RunEventContext } from './run-event-context.ts';

/** `run:start`: the claimed attempt starts (with the adaptor versions it runs). */
export async function handleRunStart(ctx: RunEventContext, payload: Record<string, unknown>): Promise<ChannelReply> {
  const key = `run:start:${ctx.attempt}`;
  const replay = await ctx.replayed(key);
  if (replay) return replay;
  const collector = new FieldErrorCollector();
  if (payload['versions'] !== undefined && !isRecord(payload['versions'])) collector.add('versions', 'must be an object');
  if (!collector.empty) return error(collector.errors);
  const run = await ctx.inFlight();
  if (!('id' in run)) return run;
  if (run.state !== 'claimed') return error({ state: ['run already started'] });
  const now = timeFrom(payload['timestamp'], Date.now());
  const versions = (payload['versions'] as Record<string, string> | undefined) ?? null;
  if (!await ctx.store.markStarted(ctx.runId, ctx.attempt, now, versions)) return error(SUPERSEDED);
  ctx.logger.info('run started');
  return await ctx.remember(key, {});
}
/** `step:start`: a step of one of the plan's jobs begins; its id is taken once. */
export async function handleStepStart(ctx: RunEventContext, payload: Record<string, unknown>): Promise<ChannelReply> {
  const stepId = payload['step_id'];
  if (!isNonEmptyString(stepId)) return error({ step_id: ["can't be blank"] });
  const key = `step:start:${stepId}`;
  const replay = await ctx.replayed(key);
  if (replay) return replay;
  const collector = new FieldErrorCollector();
  const jobId = payload['job_id'];
  if (!isNonEmptyString(jobId)) collector.add('job_id', "can't be blank");
  else if (!ctx.plan.jobs.some((job) => job.id === jobId)) collector.add('job_id', 'is not a job of this plan');
  const input = payload['input_dataclip_id'];
  if (!isOptionalString(input)) collector.add('input_dataclip_id', 'must be a string');
  if (!collector.empty) return error(collector.errors);
  const run = await ctx.inFlight();
  if (!('id' in run)) return run;
  if (run.state !== 'started') return error({ state: ['run has not started'] });
  const existing = await ctx.store.getStep(stepId);
  if (existing) return error({ step_id: ['has already been taken'] });
  await ctx.store.insertStep({
    id: stepId,
    runId: ctx.runId,
    attempt: ctx.attempt,
    jobId: jobId as string,
    inputDataclipId: (input as string | null | undefined) ?? null,
    startedAt: timeFrom(payload['timestamp'], Date.now()),
  });
  return await ctx.remember(key, { step_id: stepId });
}
/** `step:complete`: the step's end, with its output dataclip (stored here) and an optional webhook response. */
export async function handleStepComplete(ctx: RunEventContext, payload: Record<string, unknown>): Promise<ChannelReply> {
  const stepId = payload['step_id'];
  if (!isNonEmptyString(stepId)) return error({ step_id: ["can't be blank"] });
  const key = `step:complete:${stepId}`;
  const replay = await ctx.replayed(key);
  if (replay) return replay;
  const collector = new FieldErrorCollector();
  const step = await ctx.store.getStep(stepId);
  if (!step || step.runId !== ctx.runId || step.attempt !== ctx.attempt) collector.add('step_id', 'is not a started step of this run');
  const jobId = payload['job_id'];
  if (!isNonEmptyString(jobId)) collector.add('job_id', "can't be blank");
  else if (step && step.jobId !== jobId) collector.add('job_id', 'does not match the step');
  const reason = payload['reason'];
  if (!isExitReason(reason)) collector.add('reason', 'is invalid');
  if (!isOptionalString(payload['error_type'])) collector.add('error_type', 'must be a string or null');
  if (!isOptionalString(payload['error_message'])) collector.add('error_message', 'must be a string or null');
  const output = payload['output_dataclip'];
  const outputId = payload['output_dataclip_id'];
  const outputError = payload['output_dataclip_error'];
  if (output !== undefined && output !== null) {
    if (typeof output !== 'string') collector.add('output_dataclip', 'must be a JSON string');
    else {
      try {
        JSON.parse(output);
      } catch {
        collector.add('output_dataclip', 'is not valid JSON');
      }
    }
    if (!isNonEmptyString(outputId)) collector.add('output_dataclip_id', "can't be blank when output_dataclip is sent");
  }
  if (!isOptionalString(outputId)) collector.add('output_dataclip_id', 'must be a string');
  if (outputError !== undefined && outputError !== null && outputError !== DATACLIP_TOO_LARGE) {
    if (typeof outputError !== 'string') collector.add('output_dataclip_error', 'must be a string');
  }
  const mem = payload['mem'];
  if (mem !== undefined && (!isRecord(mem) || typeof mem['job'] !== 'number' || typeof mem['system'] !== 'number')) {
    collector.add('mem', 'must be {job, system} numbers');
  }
  const duration = payload['duration'];
  if (duration !== undefined && (typeof duration !== 'number' || duration < 0)) collector.add('duration', 'must be a non-negative number');
  const threadId = payload['thread_id'];
  if (threadId !== undefined && threadId !== null && typeof threadId !== 'number') collector.add('thread_id', 'must be a number');
  const webhook = payload['webhook_response'];
  if (webhook !== undefined && webhook !== null) {
    if (!isRecord(webhook)) collector.add('webhook_response', 'must be an object');
    else if (webhook['status'] !== undefined && (typeof webhook['status'] !== 'number' || !Number.isInteger(webhook['status']) || webhook['status'] < 100 || webhook['status'] > 599)) {
      collector.add('webhook_response.status', 'must be an HTTP status');
    }
  }
  if (!collector.empty) return error(collector.errors);
  const run = await ctx.inFlight();
  if (!('id' in run)) return run;
  const now = Date.now();
  if (typeof output === 'string' && typeof outputId === 'string') {
    await ctx.store.insertDataclip(outputId, ctx.runId, 'step_result', output, now);
  }
  await ctx.store.completeStep({
    id: stepId,
    outputDataclipId: typeof outputId === 'string' ? outputId : null,
    outputDataclipError: typeof outputError === 'string' ? outputError : null,
    reason: reason as string,
    errorType: (payload['error_type'] as string | null | undefined) ?? null,
    errorMessage: (payload['error_message'] as string | null | undefined) ?? null,
    mem: mem ?? null,
    durationMs: typeof duration === 'number' ? duration : null,
    threadId: typeof threadId === 'number' ? threadId : null,
    finishedAt: timeFrom(payload['timestamp'], now),
  });
  if (isRecord(webhook)) await ctx.store.setWebhookResponseOnce(ctx.runId, webhook as WebhookResponse);
  return await ctx.remember(key, { step_id: stepId });
}
/** `run:complete`: the attempt's end, through the run lifecycle (which retries it or finishes it). */
export async function handleRunComplete(ctx: RunEventContext, payload: Record<string, unknown>): Promise<ChannelReply> {
  const key = `run:complete:${ctx.attempt}`;
  const replay = await ctx.replayed(key);
  if (replay) return replay;
  const collector = new FieldErrorCollector();
  const reason = payload['reason'];
  if (!isExitReason(reason)) collector.add('reason', 'is invalid');
  if (!isOptionalString(payload['error_type'])) collector.add('error_type', 'must be a string or null');
  if (!isOptionalString(payload['error_message'])) collector.add('error_message', 'must be a string or null');
  if (!isOptionalString(payload['final_dataclip_id'])) collector.add('final_dataclip_id', 'must be a string');
  if (!collector.empty) return error(collector.errors);
  const current = await ctx.store.getRun(ctx.runId);
  // The worker ending a run that was cancelled here (run_cancel) confirms what is stored: not an error.
  if (reason === 'cancel' && current?.state === 'cancelled' && current.attempts === ctx.attempt) return ok({});
  const run = await ctx.inFlight();
  if (!('id' in run)) return run;
  const exitReason = reason as Parameters<typeof runStateForReason>[0];
  const result = await ctx.lifecycle.finish(
    run,
    {
      state: runStateForReason(exitReason),
      reason: exitReason,
      errorType: (payload['error_type'] as string | null | undefined) ?? null,
      errorMessage: (payload['error_message'] as string | null | undefined) ?? null,
      finalDataclipId: (payload['final_dataclip_id'] as string | null | undefined) ?? null,
      finalState: payload['final_state'],
    },
    timeFrom(payload['timestamp'], Date.now()),
    ctx.store,
  );
  if (result === 'stale') return error(ALREADY_COMPLETED);
  return await ctx.remember(key, {});
}