/**
 * The child's check of every message a run thread posts, against the run's
 * own state. Job code runs in that thread; should it ever reach the thread's
 * port (thread-port.ts is there so that it cannot), what it posts must still
 * fit the run the child handed over, or the run ends as a sandbox violation:
 *
 * - `started` once, first; `ready` never again;
 * - `step-start` names a job of the plan, with a step id not seen before,
 *   while no step is open; `step-complete` closes the open step (same step
 *   and job id); a log names the open step or none;
 * - a credential request asks for the credential of the open step's job,
 *   and nothing else (never another job's credential);
 * - `end` once; a `success` end only with no step open and one completed;
 * - compiled job text (`acceptsCompiled`) only after `started` and before the
 *   first step starts, for a job of the plan: job code runs only inside a
 *   step, so nothing it posts can become another run's cached code. Late
 *   text is dropped, not fatal (nothing of the run depends on it).
 *
 * States: waiting → running ⇄ in-step → ended (any state → ended on `end`).
 */
import type { ExecutionRequest } from '../runtime/execution-request.ts';
import type { ThreadToChild } from './ipc-messages.ts';

export type GuardVerdict = { ok: true } | { ok: false; rule: string };

type GuardState =
  | { kind: 'waiting' }
  | { kind: 'running' }
  | { kind: 'in-step'; stepId: string; jobId: string }
  | { kind: 'ended' };

const OK: GuardVerdict = Object.freeze({ ok: true });
const refuse = (rule: string): GuardVerdict => ({ ok: false, rule });

export class ThreadMessageGuard {
  /** Job id → its credential id (null: none). */
  readonly #jobs: ReadonlyMap<string, string | null>;
  readonly #seenSteps = new Set<string>();
  #completed = 0;
  #state: GuardState = { kind: 'waiting' };

  constructor(request: Pick<ExecutionRequest, 'jobs'>) {
    this.#jobs = new Map(request.jobs.map((job) => [job.id, job.credentialId]));
  }

  /** Whether compiled text from the thread may be cached: after `started`, before any step, for a job of the plan. */
  acceptsCompiled(message: Extract<ThreadToChild, { type: 'compiled' }>): boolean {
    return this.#state.kind === 'running' && this.#seenSteps.size === 0 && typeof message.code === 'string' && this.#jobs.has(message.jobId);
  }

  /** Checks one message and advances the state when it fits; a refused message leaves the state as it was. */
  check(message: ThreadToChild): GuardVerdict {
    const state = this.#state;
    if (state.kind === 'ended') return refuse(`${message.type} after the run's end`);
    switch (message.type) {
      case 'ready':
        return refuse('ready after the run was handed over');
      case 'started':
        if (state.kind !== 'waiting') return refuse('started twice');
        this.#state = { kind: 'running' };
        return OK;
      case 'first-turn-ended':
        if (state.kind === 'waiting') return refuse('first-turn-ended before the run started');
        return OK;
      case 'credential-request':
        if (state.kind !== 'in-step') return refuse('a credential request outside a step');
        if (this.#jobs.get(state.jobId) !== message.credentialId) return refuse(`a credential request for another job's credential (step of job ${state.jobId})`);
        return OK;
      case 'end':
        if (message.end.reason === 'success' && (state.kind === 'in-step' || this.#completed === 0)) return refuse('a success end without every step completed');
        this.#state = { kind: 'ended' };
        return OK;
      case 'event':
        if (state.kind === 'waiting') return refuse(`${message.event.type} before the run started`);
        return this.#checkEvent(message.event, state);
      default:
        return refuse('an unknown message');
    }
  }

  #checkEvent(event: Extract<ThreadToChild, { type: 'event' }>['event'], state: Exclude<GuardState, { kind: 'waiting' } | { kind: 'ended' }>): GuardVerdict {
    switch (event.type) {
      case 'step-start':
        if (state.kind === 'in-step') return refuse(`step-start while step ${state.stepId} is open`);
        if (!this.#jobs.has(event.jobId)) return refuse(`step-start for job ${JSON.stringify(event.jobId)}, not in the plan`);
        if (typeof event.stepId !== 'string' || event.stepId.length === 0 || this.#seenSteps.has(event.stepId)) return refuse('step-start with a step id already used');
        this.#seenSteps.add(event.stepId);
        this.#state = { kind: 'in-step', stepId: event.stepId, jobId: event.jobId };
        return OK;
      case 'step-complete':
        if (state.kind !== 'in-step' || state.stepId !== event.stepId || state.jobId !== event.jobId) return refuse('step-complete for a step that is not open');
        this.#completed += 1;
        this.#state = { kind: 'running' };
        return OK;
      case 'log':
        if (event.stepId !== undefined && (state.kind !== 'in-step' || state.stepId !== event.stepId)) return refuse('a log line for a step that is not open');
        return OK;
      default:
        return refuse('an event the thread does not send');
    }
  }
}
