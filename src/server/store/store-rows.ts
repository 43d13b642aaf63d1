/**
 * Rows to records, shared by both stores: their tables have the same columns
 * (PostgreSQL's BIGINTs arrive as strings, hence `Number` everywhere).
 */
import type { RunPlan, RunState, WebhookResponse } from '../../protocol/index.ts';
import type { AttemptRecord, LaneAttempt, LeaseMode, LogRecord, QueueStats, RunRecord, StepRecord } from './store.ts';

export type Row = Record<string, unknown>;

export const str = (row: Row, key: string): string => String(row[key]);
export const optStr = (row: Row, key: string): string | null => (row[key] === null || row[key] === undefined ? null : String(row[key]));
export const num = (row: Row, key: string): number => Number(row[key]);
export const optNum = (row: Row, key: string): number | null => (row[key] === null || row[key] === undefined ? null : Number(row[key]));
export function optJson<T>(row: Row, key: string): T | null {
  const value = row[key];
  if (value === null || value === undefined) return null;
  return JSON.parse(String(value)) as T;
}

export function toRun(row: Row): RunRecord {
  return {
    id: str(row, 'id'),
    queue: str(row, 'queue'),
    priority: num(row, 'priority'),
    state: str(row, 'state') as RunState,
    reason: optStr(row, 'reason'),
    errorType: optStr(row, 'error_type'),
    errorMessage: optStr(row, 'error_message'),
    attempts: num(row, 'attempts'),
    maxAttempts: num(row, 'max_attempts'),
    deadLetter: num(row, 'dead_letter') === 1,
    idempotencyKey: optStr(row, 'idempotency_key'),
    workerId: optStr(row, 'worker_id'),
    workerName: optStr(row, 'worker_name'),
    plan: JSON.parse(str(row, 'plan')) as RunPlan,
    dataclipId: str(row, 'dataclip_id'),
    runTimeoutMs: num(row, 'run_timeout_ms'),
    seq: num(row, 'seq'),
    createdAt: num(row, 'created_at'),
    enqueuedAt: num(row, 'enqueued_at'),
    availableAt: num(row, 'available_at'),
    claimedAt: optNum(row, 'claimed_at'),
    startedAt: optNum(row, 'started_at'),
    finishedAt: optNum(row, 'finished_at'),
    leaseExpiresAt: optNum(row, 'lease_expires_at'),
    leaseMode: optStr(row, 'lease_mode') as LeaseMode | null,
    tokenHash: optStr(row, 'token_hash'),
    finalDataclipId: optStr(row, 'final_dataclip_id'),
    finalState: optJson<unknown>(row, 'final_state'),
    webhookResponse: optJson<WebhookResponse>(row, 'webhook_response'),
    versions: optJson<Record<string, string>>(row, 'versions'),
  };
}

export function toStep(row: Row): StepRecord {
  return {
    id: str(row, 'id'),
    attempt: num(row, 'attempt'),
    jobId: str(row, 'job_id'),
    inputDataclipId: optStr(row, 'input_dataclip_id'),
    outputDataclipId: optStr(row, 'output_dataclip_id'),
    outputDataclipError: optStr(row, 'output_dataclip_error'),
    reason: optStr(row, 'reason'),
    errorType: optStr(row, 'error_type'),
    errorMessage: optStr(row, 'error_message'),
    mem: optJson<unknown>(row, 'mem'),
    durationMs: optNum(row, 'duration_ms'),
    threadId: optNum(row, 'thread_id'),
    startedAt: num(row, 'started_at'),
    finishedAt: optNum(row, 'finished_at'),
  };
}

export function toAttempt(row: Row): AttemptRecord {
  return {
    attempt: num(row, 'attempt'),
    workerId: optStr(row, 'worker_id'),
    workerName: optStr(row, 'worker_name'),
    claimedAt: num(row, 'claimed_at'),
    startedAt: optNum(row, 'started_at'),
    finishedAt: optNum(row, 'finished_at'),
    state: str(row, 'state') as RunState,
    errorType: optStr(row, 'error_type'),
    errorMessage: optStr(row, 'error_message'),
  };
}

export function toLog(row: Row): LogRecord {
  return {
    id: str(row, 'id'),
    attempt: num(row, 'attempt'),
    stepId: optStr(row, 'step_id'),
    level: str(row, 'level'),
    source: str(row, 'source'),
    message: JSON.parse(str(row, 'message')) as unknown[],
    timestamp: str(row, 'timestamp'),
  };
}

export function toLaneAttempt(row: Row): LaneAttempt {
  return {
    runId: str(row, 'run_id'),
    attempt: num(row, 'attempt'),
    workerId: optStr(row, 'worker_id'),
    lane: optStr(row, 'lane'),
    queue: str(row, 'queue'),
    state: str(row, 'state') as RunState,
    step: optStr(row, 'step'),
    memoryMb: optNum(row, 'memory_mb'),
    claimedAt: num(row, 'claimed_at'),
    startedAt: optNum(row, 'started_at'),
    finishedAt: optNum(row, 'finished_at'),
  };
}

/**
 * The dashboard's attempt query, the same text on both stores but for the
 * placeholder style: columns, the run's queue and, for attempts in flight
 * (`open`), the job of their open step (an ended attempt has none, and
 * looking for it per row was most of the query's cost).
 */
export function laneAttemptColumns(open: boolean): string {
  const step = open
    ? `(SELECT s.job_id FROM steps s WHERE s.run_id = a.run_id AND s.attempt = a.attempt AND s.finished_at IS NULL
        ORDER BY s.started_at DESC LIMIT 1)`
    : 'NULL';
  return `SELECT a.run_id, a.attempt, a.worker_id, a.lane, a.memory_mb, a.state, a.claimed_at, a.started_at, a.finished_at, r.queue, ${step} AS step
    FROM run_attempts a JOIN runs r ON r.id = a.run_id`;
}

/** Ended attempts (queried newest first) and those in flight, together by claim time: the order the timeline draws them. */
export function byClaim(open: LaneAttempt[], endedNewestFirst: LaneAttempt[]): LaneAttempt[] {
  return [...endedNewestFirst.reverse(), ...open].sort((a, b) => a.claimedAt - b.claimedAt);
}

/** `queueStats()` from its three reads: queue flags, counts by queue and state, the oldest available run per queue. */
export function assembleQueueStats(
  flags: Row[],
  counts: ReadonlyArray<{ queue: string; state: RunState; count: number }>,
  oldest: Row[],
): QueueStats[] {
  const byName = new Map<string, QueueStats>();
  const entry = (name: string): QueueStats => {
    let stats = byName.get(name);
    if (!stats) {
      stats = { name, suspended: false, counts: {}, oldestAvailableAt: null };
      byName.set(name, stats);
    }
    return stats;
  };
  for (const row of flags) entry(str(row, 'name')).suspended = num(row, 'suspended') === 1;
  for (const { queue, state, count } of counts) entry(queue).counts[state] = count;
  for (const row of oldest) entry(str(row, 'queue')).oldestAvailableAt = optNum(row, 'oldest');
  return [...byName.values()].sort((a, b) => a.name.localeCompare(b.name));
}
