/**
 * Records to the JSON API's views (protocol/api-views.ts): snake_case fields,
 * ISO 8601 times, nothing internal (token hashes, lease bookkeeping).
 */
import type { AttemptView, LogLineView, RunDetailView, RunSummaryView, StepView } from '../protocol/index.ts';
import type { AttemptRecord, LogRecord, RunRecord, StepRecord } from './store/store.ts';

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

export function runSummaryView(run: RunRecord): RunSummaryView {
  return {
    id: run.id,
    queue: run.queue,
    priority: run.priority,
    state: run.state,
    reason: run.reason,
    error_type: run.errorType,
    error_message: run.errorMessage,
    attempts: run.attempts,
    max_attempts: run.maxAttempts,
    dead_letter: run.deadLetter,
    idempotency_key: run.idempotencyKey,
    worker: run.workerId,
    worker_name: run.workerName,
    created_at: iso(run.createdAt),
    available_at: iso(run.availableAt),
    claimed_at: iso(run.claimedAt),
    started_at: iso(run.startedAt),
    finished_at: iso(run.finishedAt),
  };
}

export function stepView(step: StepRecord): StepView {
  return {
    id: step.id,
    attempt: step.attempt,
    job_id: step.jobId,
    input_dataclip_id: step.inputDataclipId,
    output_dataclip_id: step.outputDataclipId,
    output_dataclip_error: step.outputDataclipError,
    reason: step.reason,
    error_type: step.errorType,
    error_message: step.errorMessage,
    mem: step.mem,
    duration_ms: step.durationMs,
    thread_id: step.threadId,
    started_at: iso(step.startedAt),
    finished_at: iso(step.finishedAt),
  };
}

export function attemptView(attempt: AttemptRecord): AttemptView {
  return {
    attempt: attempt.attempt,
    worker: attempt.workerId,
    worker_name: attempt.workerName,
    state: attempt.state,
    error_type: attempt.errorType,
    error_message: attempt.errorMessage,
    claimed_at: iso(attempt.claimedAt),
    started_at: iso(attempt.startedAt),
    finished_at: iso(attempt.finishedAt),
  };
}

export function logView(line: LogRecord): LogLineView {
  return {
    id: line.id,
    attempt: line.attempt,
    step_id: line.stepId,
    level: line.level,
    source: line.source,
    message: line.message,
    timestamp: line.timestamp,
  };
}

/** The full run of `GET /api/runs/:id`. */
export function runDetailView(run: RunRecord, steps: StepRecord[], attempts: AttemptRecord[]): RunDetailView {
  return {
    ...runSummaryView(run),
    plan: run.plan,
    steps: steps.map(stepView),
    history: attempts.map(attemptView),
    final_dataclip_id: run.finalDataclipId,
    final_state: run.finalState,
    webhook_response: run.webhookResponse,
    versions: run.versions,
  };
}
