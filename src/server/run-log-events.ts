/**
 * The log events of `run:<id>`: `run:log` (one line) and `run:batch_logs`
 * (many, each keyed by its own `log_id` as well as the batch's). Lines are
 * scrubbed of the plan's credentials before they are stored.
 */
import { error, ok } from './phoenix-channel.ts';
import type { ChannelReply } from './phoenix-channel.ts';
import { batchLogsPayloadShape, logLineShape } from '../protocol/index.ts';
import type { FieldErrors } from '../protocol/index.ts';
import type { RunEventContext } from './run-event-context.ts';

interface ParsedLogLine {
  stepId: string | null;
  level: string;
  source: string;
  message: unknown[];
  timestamp: string;
  logId: string | null;
}

/** A line checked by `LogLineSchema`, for the store; `run_id`, when sent, must be this run's. */
function parseLogLine(line: unknown, runId: string, prefix: string, errors: FieldErrors): ParsedLogLine | undefined {
  const at = (name: string): string => (prefix === '' ? name : `${prefix}.${name}`);
  const runIdSent = typeof line === 'object' && line !== null ? (line as Record<string, unknown>)['run_id'] : undefined;
  const foreign = runIdSent !== undefined && runIdSent !== runId;
  if (foreign) errors[at('run_id')] = ['does not match this run'];
  if (!logLineShape.check(line)) {
    for (const [field, messages] of Object.entries(logLineShape.problems(line, prefix))) (errors[field] ??= []).push(...messages);
    return undefined;
  }
  if (foreign) return undefined;
  return {
    stepId: line.step_id ?? null,
    level: line.level,
    source: line.source,
    message: line.message,
    timestamp: line.timestamp ?? String(Date.now() * 1000),
    logId: line.log_id ?? null,
  };
}

/** `run:log`: one line, idempotent by its `log_id` when it has one. */
export async function handleRunLog(ctx: RunEventContext, payload: Record<string, unknown>): Promise<ChannelReply> {
  const errors: FieldErrors = {};
  const line = parseLogLine(payload, ctx.runId, '', errors);
  if (!line) return error(errors);
  const key = line.logId === null ? null : `log:${line.logId}`;
  if (key) {
    const replay = await ctx.replayed(key);
    if (replay) return replay;
  }
  const run = await ctx.inFlight();
  if (!('id' in run)) return run;
  if (line.stepId !== null && (await ctx.store.getStep(line.stepId))?.runId !== ctx.runId) {
    return error({ step_id: ['is not a step of this run'] });
  }
  const id = await ctx.store.insertLog({ runId: ctx.runId, attempt: ctx.attempt, ...line, message: (await ctx.credentialScrubber()).redact(line.message) });
  const reply = { log_line_id: id };
  return key ? await ctx.remember(key, reply) : ok(reply);
}
/** `run:batch_logs`: lines already stored under their own `log_id` are skipped. */
export async function handleBatchLogs(ctx: RunEventContext, payload: Record<string, unknown>): Promise<ChannelReply> {
  if (!batchLogsPayloadShape.check(payload)) return error(batchLogsPayloadShape.problems(payload));
  const batchId = payload.log_id;
  const key = typeof batchId === 'string' ? `batch:${batchId}` : null;
  if (key) {
    const replay = await ctx.replayed(key);
    if (replay) return replay;
  }
  const errors: FieldErrors = {};
  if (payload.run_id !== undefined && payload.run_id !== ctx.runId) errors['run_id'] = ['does not match this run'];
  const lines: ParsedLogLine[] = [];
  payload.logs.forEach((raw, index) => {
    const line = parseLogLine(raw, ctx.runId, `logs[${index}]`, errors);
    if (line) lines.push(line);
  });
  if (Object.keys(errors).length > 0) return error(errors);
  const run = await ctx.inFlight();
  if (!('id' in run)) return run;
  for (const line of lines) {
    const lineKey = line.logId === null ? null : `log:${line.logId}`;
    if (lineKey && (await ctx.store.getEventReply(ctx.runId, lineKey)) !== undefined) continue;
    const id = await ctx.store.insertLog({ runId: ctx.runId, attempt: ctx.attempt, ...line, message: (await ctx.credentialScrubber()).redact(line.message) });
    if (lineKey) await ctx.store.putEventReply(ctx.runId, lineKey, { log_line_id: id });
  }
  return key ? await ctx.remember(key, {}) : ok({});
}