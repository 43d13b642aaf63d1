/**
 * The log events of `run:<id>`: `run:log` (one line) and `run:batch_logs`
 * (many, each keyed by its own `log_id` as well as the batch's). Lines are
 * scrubbed of the plan's credentials before they are stored.
 */
import { error, ok } from './phoenix-channel.ts';
import type { ChannelReply } from './phoenix-channel.ts';
import { FieldErrorCollector, isNonEmptyString, isOptionalString, isRecord } from './field-errors.ts';
import { parseTimestampMicros } from '../protocol/index.ts';
import type { RunEventContext } from './run-event-context.ts';

interface ParsedLogLine {
  stepId: string | null;
  level: string;
  source: string;
  message: unknown[];
  timestamp: string;
  logId: string | null;
}

function parseLogLine(line: unknown, runId: string, prefix: string, collector: FieldErrorCollector): ParsedLogLine | undefined {
  if (!isRecord(line)) {
    collector.add(prefix || 'payload', 'must be an object');
    return undefined;
  }
  const field = (name: string): string => (prefix ? `${prefix}.${name}` : name);
  const before = Object.keys(collector.errors).length;
  if (line['run_id'] !== undefined && line['run_id'] !== runId) collector.add(field('run_id'), 'does not match this run');
  const message = line['message'];
  if (!Array.isArray(message)) collector.add(field('message'), 'must be a list');
  if (!isNonEmptyString(line['level'])) collector.add(field('level'), "can't be blank");
  if (!isNonEmptyString(line['source'])) collector.add(field('source'), "can't be blank");
  if (!isOptionalString(line['step_id'])) collector.add(field('step_id'), 'must be a string');
  if (line['log_id'] !== undefined && !isNonEmptyString(line['log_id'])) collector.add(field('log_id'), 'must be a non-empty string');
  if (line['timestamp'] !== undefined && parseTimestampMicros(line['timestamp']) === undefined) {
    collector.add(field('timestamp'), 'must be a string of microseconds');
  }
  if (Object.keys(collector.errors).length !== before) return undefined;
  return {
    stepId: (line['step_id'] as string | null | undefined) ?? null,
    level: line['level'] as string,
    source: line['source'] as string,
    message: message as unknown[],
    timestamp: (line['timestamp'] as string | undefined) ?? String(Date.now() * 1000),
    logId: (line['log_id'] as string | undefined) ?? null,
  };
}

/** `run:log`: one line, idempotent by its `log_id` when it has one. */
export async function handleRunLog(ctx: RunEventContext, payload: Record<string, unknown>): Promise<ChannelReply> {
  const collector = new FieldErrorCollector();
  const line = parseLogLine(payload, ctx.runId, '', collector);
  if (!line) return error(collector.errors);
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
  const batchId = payload['log_id'];
  if (batchId !== undefined && !isNonEmptyString(batchId)) return error({ log_id: ['must be a non-empty string'] });
  const key = typeof batchId === 'string' ? `batch:${batchId}` : null;
  if (key) {
    const replay = await ctx.replayed(key);
    if (replay) return replay;
  }
  const collector = new FieldErrorCollector();
  if (payload['run_id'] !== undefined && payload['run_id'] !== ctx.runId) collector.add('run_id', 'does not match this run');
  const logs = payload['logs'];
  if (!Array.isArray(logs)) return error({ logs: ['must be a list'] });
  const lines: ParsedLogLine[] = [];
  logs.forEach((raw, index) => {
    const line = parseLogLine(raw, ctx.runId, `logs[${index}]`, collector);
    if (line) lines.push(line);
  });
  if (!collector.empty) return error(collector.errors);
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