/**
 * How runs, their steps, attempts and log lines look in the JSON API
 * (docs/server.md, "JSON API"): snake_case fields, ISO 8601 times. The server
 * builds them (server/run-view.ts); the dashboard and other clients read them.
 */
import type { RunPlan, WebhookResponse } from './messages.ts';
import type { RunState } from './reasons.ts';

/** A run in `GET /api/runs` and the answers of its actions. */
export interface RunSummaryView {
  id: string;
  queue: string;
  priority: number;
  state: RunState;
  reason: string | null;
  error_type: string | null;
  error_message: string | null;
  attempts: number;
  max_attempts: number;
  dead_letter: boolean;
  idempotency_key: string | null;
  worker: string | null;
  worker_name: string | null;
  created_at: string | null;
  available_at: string | null;
  claimed_at: string | null;
  started_at: string | null;
  finished_at: string | null;
}

export interface StepView {
  id: string;
  attempt: number;
  job_id: string;
  input_dataclip_id: string | null;
  output_dataclip_id: string | null;
  output_dataclip_error: string | null;
  reason: string | null;
  error_type: string | null;
  error_message: string | null;
  mem: unknown;
  duration_ms: number | null;
  thread_id: number | null;
  started_at: string | null;
  finished_at: string | null;
}

/** One attempt of a run: its retry history. */
export interface AttemptView {
  attempt: number;
  worker: string | null;
  worker_name: string | null;
  state: RunState;
  error_type: string | null;
  error_message: string | null;
  claimed_at: string | null;
  started_at: string | null;
  finished_at: string | null;
}

/** A line of `GET /api/runs/:id/logs`; `timestamp` is microseconds since the epoch, as a string. */
export interface LogLineView {
  id: string;
  attempt: number;
  step_id: string | null;
  level: string;
  source: string;
  message: unknown[];
  timestamp: string;
}

/** The full run of `GET /api/runs/:id`. */
export interface RunDetailView extends RunSummaryView {
  plan: RunPlan;
  steps: StepView[];
  history: AttemptView[];
  final_dataclip_id: string | null;
  final_state: unknown;
  webhook_response: WebhookResponse | null;
  versions: Record<string, string> | null;
  /** Why an available run waits though workers are connected (no lane has the memory it needs), else null. */
  waiting_reason?: string | null;
}
