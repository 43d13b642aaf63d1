/**
 * A lane's state union and the moves between them (the states are described
 * at the top of `workloop.ts`). What belongs to a state travels in its
 * variant: the backoff wake of the claim cycle, the claim in flight with the
 * slots promised to it, the resolver of a full lane's wait, the promise of a
 * stop in flight.
 */
import type { StateMachine } from '../state-machine.ts';
import { BackoffWake } from './backoff-wake.ts';

/** One claim, from the moment it is sent until the next cycle (or the stop) has taken its outcome. */
export interface LaneClaim {
  /** Slots promised to it while it is in flight; 0 once its reply came. */
  promised: number;
  /** Work arrived while it was in flight: claim again even if it comes back empty. */
  wakeRequested: boolean;
  /**
   * Its reply brought fewer runs than its demand, so this lane's queues were
   * empty when the server answered: the next claim waits for the minimum
   * backoff or a wake, instead of asking the server straight away while it
   * is busy serving the runs just claimed (joins, plans, inputs).
   */
  drained: boolean;
  /**
   * Set when it was sent straight from a wake: the backoff it cut short is
   * still unwinding (p-retry's rejection, the next cycle), a few dozen
   * microseconds of promise hops that sending the claim does not have to wait
   * for. The next cycle takes it as its first attempt (and sets this to null).
   */
  early: Promise<void> | null;
}

export type WorkloopState =
  | { readonly kind: 'idle' }
  /** `wake` ends the cycle's backoff; `claim` is the claim sent last (in flight until `promised` is 0). */
  | { readonly kind: 'claiming'; readonly wake: BackoffWake; readonly claim: LaneClaim }
  | { readonly kind: 'waiting'; readonly wake: BackoffWake }
  /** `wakeUp` ends the wait for a slot; `drained` is carried from the claim before it to the next cycle. */
  | { readonly kind: 'full'; readonly wakeUp: () => void; readonly drained: boolean }
  /** `claim`: the one in flight (or sent early and not yet taken) when stop() came; its runs still start. */
  | { readonly kind: 'stopping'; readonly done: Promise<void>; readonly finish: () => void; readonly claim: LaneClaim | null }
  | { readonly kind: 'stopped' };

export type WorkloopStateKind = WorkloopState['kind'];

export type WorkloopMachine = StateMachine<WorkloopState>;

/**
 * The moves a lane may make. `claiming → claiming` is the next claim after one
 * that brought runs, `full → full` a wait that ended with the lane still full
 * (a slot free, its memory not); neither is logged as a change.
 */
export const WORKLOOP_TRANSITIONS = {
  idle: ['claiming', 'full', 'stopped'],
  claiming: ['claiming', 'waiting', 'full', 'stopping'],
  waiting: ['claiming', 'full', 'stopping'],
  full: ['claiming', 'full', 'waiting', 'stopping'],
  stopping: ['stopped'],
  stopped: [],
} as const satisfies { [K in WorkloopStateKind]: readonly WorkloopStateKind[] };

/** The claim sent last, while the lane is claiming or stopping with it. */
export function laneClaimOf(state: WorkloopState): LaneClaim | null {
  return state.kind === 'claiming' || state.kind === 'stopping' ? state.claim : null;
}

/** Whether the claim before this state came back short: the next cycle first waits the minimum backoff. */
export function drainedBefore(state: WorkloopState): boolean {
  if (state.kind === 'full') return state.drained;
  return state.kind === 'claiming' && state.claim.drained;
}

/** Takes the claim a wake sent early, if one waits to be taken: the taker awaits its outcome. */
export function takeEarly(machine: WorkloopMachine): Promise<void> | null {
  const claim = laneClaimOf(machine.current);
  const early = claim?.early ?? null;
  if (claim !== null) claim.early = null;
  return early;
}

/**
 * A fresh wake for a claim cycle (a fired one stays fired). A claim in
 * flight, such as one a wake sent, is handed it, so that stop() reaches the cycle.
 */
export function rearm(machine: WorkloopMachine): BackoffWake {
  const wake = new BackoffWake();
  const claiming = machine.when('claiming');
  if (claiming !== undefined) machine.to({ kind: 'claiming', wake, claim: claiming.claim });
  return wake;
}

/** A `stopping` state whose `done` resolves on `finish()`. */
export function stoppingState(claim: LaneClaim | null): Extract<WorkloopState, { kind: 'stopping' }> {
  const { promise, resolve } = Promise.withResolvers<void>();
  return { kind: 'stopping', done: promise, finish: resolve, claim };
}
