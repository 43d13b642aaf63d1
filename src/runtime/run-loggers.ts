/**
 * The three loggers a run's runtime writes through: `JOB` (job code's
 * `console`), `R/T` (the runtime's own lines, info and above) and `ADA`
 * (adaptor code, through the thread's global console). Each is a JSON
 * @openfn/logger whose lines become `log` events on the run's route.
 *
 * Making them is a tenth of a millisecond of the path from a run reaching
 * its thread to its first line of job code, and nothing about them depends
 * on the run but two plan options: so the warm spare makes a set ahead for
 * the options nearly every run has (job logs at `debug`, nothing sanitized),
 * and a run with other options gets a set made then. A thread serves one run:
 * the set made ahead serves that run only.
 */
import createLogger from '@openfn/logger';
import type { LogLevel, LogOptions, Logger as RuntimeLogger, SanitizePolicies } from '@openfn/logger';
import { timestampMicros } from '../protocol/timestamp.ts';
import type { ExecutionEvent } from './execution-request.ts';
import { limitLogMessage, toPlain } from './payload-limits.ts';

/** Where a run's log lines go: set by the run before any line can come. */
export interface LogRoute {
  emit: (event: ExecutionEvent) => void;
  /** Bound of one line (the run's `logPayloadLimitMb`). */
  limitMb: number;
  /** The step open now, whose id each line carries. */
  stepId: string | undefined;
}

export interface RunLoggers {
  job: RuntimeLogger;
  runtime: RuntimeLogger;
  adaptor: RuntimeLogger;
  route: LogRoute;
}

const LOG_LEVELS: ReadonlySet<string> = new Set(['debug', 'info', 'default', 'none']);
const SANITIZE: ReadonlySet<string> = new Set(['none', 'remove', 'obfuscate', 'summarize']);

/** The plan's `job_log_level`, or `debug` when it names no level the logger knows. */
export function jobLogLevel(value: string | undefined): LogLevel {
  return value !== undefined && LOG_LEVELS.has(value) ? (value as LogLevel) : 'debug';
}

/** The plan's `sanitize`, or `none` when it names no policy the logger knows. */
export function sanitizePolicy(value: string | undefined): SanitizePolicies {
  return value !== undefined && SANITIZE.has(value) ? (value as SanitizePolicies) : 'none';
}

type LogEmitter = NonNullable<LogOptions['logger']>;

function makeLoggers(jobLevel: LogLevel, sanitize: SanitizePolicies): RunLoggers {
  const route: LogRoute = { emit: () => undefined, limitMb: 0, stepId: undefined };
  const emitter = (source: string): LogEmitter => {
    const send = (...args: unknown[]): void => {
      const line = args[0] as { level?: string; message?: unknown[] } | undefined;
      const message = limitLogMessage((line?.message ?? []).map(toPlain), route.limitMb);
      const event: ExecutionEvent = { type: 'log', level: line?.level ?? 'info', source, message, timestamp: timestampMicros() };
      if (route.stepId !== undefined) event.stepId = route.stepId;
      route.emit(event);
    };
    return { ...console, log: send, info: send, debug: send, warn: send, error: send, success: send, always: send };
  };
  return {
    job: createLogger('JOB', { level: jobLevel, json: true, logger: emitter('JOB'), sanitize }),
    runtime: createLogger('R/T', { level: 'info', json: true, logger: emitter('R/T'), sanitize }),
    adaptor: createLogger('ADA', { level: 'debug', json: true, logger: emitter('ADA'), sanitize }),
    route,
  };
}

/** The set made ahead, with the options it was made for. */
let ahead: { jobLevel: LogLevel; sanitize: SanitizePolicies; loggers: RunLoggers } | undefined;

/** Makes the set a run with the usual options will take (run-thread.ts calls it once the spare is warm). */
export function prepareRunLoggers(): void {
  ahead = { jobLevel: 'debug', sanitize: 'none', loggers: makeLoggers('debug', 'none') };
}

/**
 * The run's loggers, routed to `route`: the set made ahead when its options
 * are the run's (taken once), else a set made now. Adaptor code's console
 * writes to the `ADA` logger from here on.
 */
export function runLoggers(jobLevel: LogLevel, sanitize: SanitizePolicies, route: Omit<LogRoute, 'stepId'>): RunLoggers {
  const made = ahead !== undefined && ahead.jobLevel === jobLevel && ahead.sanitize === sanitize ? ahead.loggers : makeLoggers(jobLevel, sanitize);
  if (made === ahead?.loggers) ahead = undefined;
  made.route.emit = route.emit;
  made.route.limitMb = route.limitMb;
  redirectConsole(made.adaptor);
  return made;
}

/** Adaptor code logs through the thread's global console: route it to `ADA` log events. */
function redirectConsole(logger: RuntimeLogger): void {
  const target = globalThis.console as unknown as Record<string, unknown>;
  for (const level of ['log', 'info', 'debug', 'warn', 'error'] as const) target[level] = logger[level].bind(logger);
}
