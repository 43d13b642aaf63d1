/**
 * The JSON API's run shapes as the dashboard reads them (docs/server.md, "JSON
 * API"): only the fields it shows. The server's own definitions import the
 * store, which a browser bundle cannot.
 */
import type { RunState } from '../../protocol/reasons.ts';

export interface RunSummary {
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
  worker: string | null;
  worker_name: string | null;
  created_at: string | null;
  claimed_at: string | null;
  started_at: string | null;
  finished_at: string | null;
}

export interface StepView {
  id: string;
  attempt: number;
  job_id: string;
  reason: string | null;
  error_type: string | null;
  error_message: string | null;
  duration_ms: number | null;
  started_at: string | null;
  finished_at: string | null;
}

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

export interface RunDetail extends RunSummary {
  steps: StepView[];
  history: AttemptView[];
  final_state: unknown;
}

export interface LogLine {
  id: string;
  attempt: number;
  step_id: string | null;
  level: string;
  source: string;
  message: unknown[];
  timestamp: string;
}
