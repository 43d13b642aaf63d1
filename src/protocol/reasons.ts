/**
 * How a run ends, in the protocol's words (PROTOCOL.md, "Reasons"), and the
 * run state the server records for each. This is the one place reasons are
 * mapped; everything else passes the types around.
 */

export const EXIT_REASONS = ['success', 'fail', 'crash', 'kill', 'cancel', 'exception'] as const;
export type ExitReason = (typeof EXIT_REASONS)[number];

export const RUN_STATES = [
  'available',
  'claimed',
  'started',
  'success',
  'failed',
  'crashed',
  'killed',
  'cancelled',
  'exception',
  'lost',
] as const;
export type RunState = (typeof RUN_STATES)[number];

export const TERMINAL_STATES: ReadonlySet<RunState> = new Set<RunState>([
  'success',
  'failed',
  'crashed',
  'killed',
  'cancelled',
  'exception',
  'lost',
]);

const STATE_BY_REASON: Record<ExitReason, RunState> = {
  success: 'success',
  fail: 'failed',
  crash: 'crashed',
  kill: 'killed',
  cancel: 'cancelled',
  exception: 'exception',
};

export function runStateForReason(reason: ExitReason): RunState {
  return STATE_BY_REASON[reason];
}

export function isExitReason(value: unknown): value is ExitReason {
  return typeof value === 'string' && (EXIT_REASONS as readonly string[]).includes(value);
}

export function isTerminalState(state: RunState): boolean {
  return TERMINAL_STATES.has(state);
}

/** `error_type` values the worker and engine produce themselves. */
export const ERROR_TYPES = {
  timeout: 'TimeoutError',
  oom: 'OOMError',
  shutdown: 'ShutdownError',
  cancelled: 'CancelError',
  compile: 'CompileError',
  job: 'JobError',
  dataclip: 'DataClipError',
  plan: 'PlanError',
  adaptor: 'AdaptorError',
  credential: 'CredentialError',
  exit: 'ExitError',
  childCrash: 'ProcessCrashError',
  runtime: 'RuntimeCrash',
  token: 'RunTokenError',
} as const;
