/**
 * One run as the parent sees it: forwards events to the worker in order and
 * settles exactly once.
 *
 * States: pending → started (run-start emitted) → settled (run-complete emitted).
 * The engine starts the session when the run's thread reports that it took
 * the run, so run-start means "executing", not "dispatched". `settle` from
 * `pending` emits run-start first, so the worker always sees run-start …
 * run-complete. After settling, late events from the child are
 * dropped; a step left open is closed with the run's reason first.
 */
import type { Logger } from 'pino';
import { timestampMicros } from '../protocol/timestamp.ts';
import type { ExecutionEvent } from '../runtime/execution-request.ts';
import type { RunEnd } from '../runtime/run-ends.ts';
import type { EngineEvent, RunOutcome, RunRequest } from './types.ts';

/**
 * The reason the settled signal carries. Made once: `abort()` without a reason builds a
 * DOMException with a stack trace for every run, a cost on the path of every run's end.
 */
const SETTLED = Object.freeze(new Error('run settled'));

export type RunSessionState = 'pending' | 'started' | 'settled';

export class RunSession {
  readonly runId: string;
  readonly #request: RunRequest;
  readonly #logger: Logger;
  #state: RunSessionState = 'pending';
  #versions: Record<string, string> = {};
  #openStep: { stepId: string; jobId: string; startedAt: number } | undefined;
  readonly done: Promise<RunOutcome>;
  #resolve: (outcome: RunOutcome) => void = () => undefined;
  /** Aborted when the session settles: cancels waits made on its behalf. */
  readonly settledSignal: AbortSignal;
  readonly #settledController = new AbortController();

  constructor(request: RunRequest, logger: Logger) {
    this.runId = request.runId;
    this.#request = request;
    this.#logger = logger;
    this.done = new Promise((resolve) => (this.#resolve = resolve));
    this.settledSignal = this.#settledController.signal;
  }

  get state(): RunSessionState {
    return this.#state;
  }

  get settled(): boolean {
    return this.#state === 'settled';
  }

  #deliver(event: EngineEvent): void {
    try {
      this.#request.onEvent(event);
    } catch (error) {
      // The contract says onEvent must not throw; if it does, the run goes on.
      this.#logger.error({ runId: this.runId, err: error, event: event.type }, 'run event listener threw');
    }
  }

  /** The versions run-start will carry (the engine knows them before the thread starts). */
  setVersions(versions: Record<string, string>): void {
    this.#versions = versions;
  }

  /** Emits run-start, stamped `timestamp` (the thread's clock, when it comes from there); later calls do nothing. */
  start(timestamp: string = timestampMicros()): void {
    if (this.#state !== 'pending') return;
    this.#state = 'started';
    this.#deliver({ type: 'run-start', timestamp, versions: this.#versions });
  }

  /** Forwards an event from the run's thread, unless the run has settled. */
  emit(event: ExecutionEvent): void {
    if (this.#state !== 'started') return;
    if (event.type === 'step-start') this.#openStep = { stepId: event.stepId, jobId: event.jobId, startedAt: performance.now() };
    else if (event.type === 'step-complete' && this.#openStep?.stepId === event.stepId) this.#openStep = undefined;
    this.#deliver(event);
  }

  /** Completes the run with this end; false when it had already settled. */
  settle(end: RunEnd): boolean {
    if (this.#state === 'settled') return false;
    if (this.#state === 'pending') this.start();
    this.#state = 'settled';
    const open = this.#openStep;
    if (open) {
      this.#openStep = undefined;
      this.#deliver({
        type: 'step-complete',
        stepId: open.stepId,
        jobId: open.jobId,
        reason: end.reason,
        errorType: end.errorType,
        errorMessage: end.errorMessage,
        outputJson: null,
        outputTooLarge: false,
        mem: { job: 0, system: 0 },
        durationMs: Math.round(performance.now() - open.startedAt),
        timestamp: timestampMicros(),
      });
    }
    const outcome: RunOutcome = { type: 'run-complete', ...end, timestamp: timestampMicros() };
    this.#deliver(outcome);
    this.#settledController.abort(SETTLED);
    this.#resolve(outcome);
    return true;
  }
}
