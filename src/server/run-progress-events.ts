/**
 * The progress events of `run:<id>`: `run:start`, `step:start`,
 * `step:complete` and `run:complete`, each validated field by field and
 * idempotent by its key (`run:start:<attempt>`, `step:start:<step_id>`,
 * `step:complete:<step_id>`, `run:complete:<attempt>`).
 */
import { runCompletePayloadShape, runStartPayloadShape, runStateForReason, stepCompletePayloadShape, stepStartPayloadShape } from '../protocol/index.ts';
import { error, ok } from './phoenix-channel.ts';
import type { ChannelReply } from './phoenix-channel.ts';
import { FieldErrorCollector } from './field-errors.ts';
import { ALREADY_COMPLETED, SUPERSEDED, timeFrom } from './run-event-context.ts';
import type { RunEventContext } from './run-event-context.ts';

/** `run:start`: the claimed attempt starts (with the adaptor versions it runs). */
export async function handleRunStart(ctx: RunEventContext, payload: Record<string, unknown>): Promise<ChannelReply> {
  const key = `run:start:${ctx.attempt}`;
  const replay = await ctx.replayed(key);
  if (replay) return replay;
  if (!runStartPayloadShape.check(payload)) return error(runStartPayloadShape.problems(payload));
  const run = await ctx.inFlight();
  if (!('id' in run)) return run;
  if (run.state !== 'claimed') return error({ state: ['run already started'] });
  const now = timeFrom(payload['timestamp'], Date.now());
  const versions = payload.versions ?? null;
  if (!await ctx.store.markStarted(ctx.runId, ctx.attempt, now, versions)) return error(SUPERSEDED);
  ctx.logger.info('run started');
  return await ctx.remember(key, {});
}
/** `step:start`: a step of one of the plan's jobs begins; its id is taken once. */
export async function handleStepStart(ctx: RunEventContext, payload: Record<string, unknown>): Promise<ChannelReply> {
  if (!stepStartPayloadShape.check(payload)) return error(stepStartPayloadShape.problems(payload));
  const { step_id: stepId, job_id: jobId } = payload;
  const key = `step:start:${stepId}`;
  const replay = await ctx.replayed(key);
  if (replay) return replay;
  if (!ctx.plan.jobs.some((job) => job.id === jobId)) return error({ job_id: ['is not a job of this plan'] });
  const run = await ctx.inFlight();
  if (!('id' in run)) return run;
  if (run.state !== 'started') return error({ state: ['run has not started'] });
  const existing = await ctx.store.getStep(stepId);
  if (existing) return error({ step_id: ['has already been taken'] });
  await ctx.store.insertStep({
    id: stepId,
    runId: ctx.runId,
    attempt: ctx.attempt,
    jobId,
    inputDataclipId: payload.input_dataclip_id ?? null,
    startedAt: timeFrom(payload.timestamp, Date.now()),
  });
  return await ctx.remember(key, { step_id: stepId });
}
/** `step:complete`: the step's end, with its output dataclip (stored here) and an optional webhook response. */
export async function handleStepComplete(ctx: RunEventContext, payload: Record<string, unknown>): Promise<ChannelReply> {
  const problems = stepCompletePayloadShape.problems(payload);
  if (problems['step_id'] !== undefined) return error({ step_id: problems['step_id'] });
  const stepId = payload['step_id'] as string;
  const key = `step:complete:${stepId}`;
  const replay = await ctx.replayed(key);
  if (replay) return replay;
  // Beyond the schema: the step is this attempt's, its job is the step's, the output is JSON and has an id.
  const collector = new FieldErrorCollector();
  for (const [field, messages] of Object.entries(problems)) for (const message of messages) collector.add(field, message);
  const step = await ctx.store.getStep(stepId);
  if (!step || step.runId !== ctx.runId || step.attempt !== ctx.attempt) collector.add('step_id', 'is not a started step of this run');
  if (step && typeof payload['job_id'] === 'string' && step.jobId !== payload['job_id']) collector.add('job_id', 'does not match the step');
  const output = payload['output_dataclip'];
  if (typeof output === 'string' && !isJson(output)) collector.add('output_dataclip', 'is not valid JSON');
  const outputId = payload['output_dataclip_id'];
  if (output !== undefined && output !== null && (typeof outputId !== 'string' || outputId === '')) {
    collector.add('output_dataclip_id', "can't be blank when output_dataclip is sent");
  }
  if (!collector.empty || !stepCompletePayloadShape.check(payload)) return error(collector.errors);
  const run = await ctx.inFlight();
  if (!('id' in run)) return run;
  const now = Date.now();
  if (typeof payload.output_dataclip === 'string' && typeof payload.output_dataclip_id === 'string') {
    await ctx.store.insertDataclip(payload.output_dataclip_id, ctx.runId, 'step_result', payload.output_dataclip, now);
  }
  await ctx.store.completeStep({
    id: stepId,
    outputDataclipId: payload.output_dataclip_id ?? null,
    outputDataclipError: payload.output_dataclip_error ?? null,
    reason: payload.reason,
    errorType: payload.error_type ?? null,
    errorMessage: payload.error_message ?? null,
    mem: payload.mem ?? null,
    durationMs: payload.duration ?? null,
    threadId: payload.thread_id ?? null,
    finishedAt: timeFrom(payload.timestamp, now),
  });
  if (payload.webhook_response !== undefined && payload.webhook_response !== null) await ctx.store.setWebhookResponseOnce(ctx.runId, payload.webhook_response);
  return await ctx.remember(key, { step_id: stepId });
}

function isJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}
/** `run:complete`: the attempt's end, through the run lifecycle (which retries it or finishes it). */
export async function handleRunComplete(ctx: RunEventContext, payload: Record<string, unknown>): Promise<ChannelReply> {
  const key = `run:complete:${ctx.attempt}`;
  const replay = await ctx.replayed(key);
  if (replay) return replay;
  if (!runCompletePayloadShape.check(payload)) return error(runCompletePayloadShape.problems(payload));
  const reason = payload.reason;
  const current = await ctx.store.getRun(ctx.runId);
  // The worker ending a run that was cancelled here (run_cancel) confirms what is stored: not an error.
  if (reason === 'cancel' && current?.state === 'cancelled' && current.attempts === ctx.attempt) return ok({});
  const run = await ctx.inFlight();
  if (!('id' in run)) return run;
  const result = await ctx.lifecycle.finish(
    run,
    {
      state: runStateForReason(reason),
      reason: reason,
      errorType: payload.error_type ?? null,
      errorMessage: payload.error_message ?? null,
      finalDataclipId: payload.final_dataclip_id ?? null,
      finalState: payload.final_state,
    },
    timeFrom(payload.timestamp, Date.now()),
    ctx.store,
  );
  if (result === 'stale') return error(ALREADY_COMPLETED);
  return await ctx.remember(key, {});
}