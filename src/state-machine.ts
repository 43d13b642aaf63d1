/**
 * The state of a long-lived object (STYLE.md, conventions 2 and 14): one value
 * of a union discriminated by `kind`, changed only through `to()`, which checks
 * the move against the class's transition table, logs it, and throws
 * `InvalidTransitionError` on a move the table does not allow. Data that
 * belongs to a state (the promise of a close in flight, a timer, a socket)
 * travels inside that state's variant, so it cannot outlive the state:
 *
 *   type State = { kind: 'open' } | { kind: 'closing'; done: Promise<void> } | { kind: 'closed' };
 *   const machine = new StateMachine<State>({
 *     name: 'socket server', initial: { kind: 'open' }, logger,
 *     transitions: { open: ['closing'], closing: ['closed'], closed: [] },
 *   });
 *   machine.to({ kind: 'closing', done });
 *   machine.when('closing')?.done;   // typed: the 'closing' variant, or undefined
 */
import { LanesError } from './errors/lanes-error.ts';

/** A state variant: anything with a string `kind`. */
export type StateVariant = { readonly kind: string };

/** For each state's kind, the kinds it may move to. */
export type TransitionTable<S extends StateVariant> = { readonly [K in S['kind']]: readonly S['kind'][] };

/** A move the transition table does not allow: a bug in the class, not a user error. */
export class InvalidTransitionError extends LanesError {
  readonly machine: string;
  readonly from: string;
  readonly to: string;

  constructor(machine: string, from: string, to: string) {
    super('INVALID_TRANSITION', `${machine}: invalid transition ${from} → ${to}`);
    this.machine = machine;
    this.from = from;
    this.to = to;
  }
}

/**
 * Where changes are logged: a pino `Logger` fits. Only this much is asked so
 * that a pooled child's own code (child-main.ts, bundled small) can use the
 * helper without a logger library.
 */
export interface StateLogger {
  debug(fields: { from: string; to: string }, message: string): void;
}

export interface StateMachineOptions<S extends StateVariant> {
  /** Names the machine in errors (`socket server: invalid transition closed → open`). */
  name: string;
  initial: S;
  transitions: TransitionTable<S>;
  /** Each change is logged at debug, `{ from, to }`, on this logger (the owner's child logger). */
  logger: StateLogger;
}

export class StateMachine<S extends StateVariant> {
  readonly #name: string;
  readonly #transitions: TransitionTable<S>;
  readonly #logger: StateLogger;
  #current: S;

  constructor(options: StateMachineOptions<S>) {
    this.#name = options.name;
    this.#transitions = options.transitions;
    this.#logger = options.logger;
    this.#current = options.initial;
  }

  /** The current state, with its data. */
  get current(): S {
    return this.#current;
  }

  get kind(): S['kind'] {
    return this.#current.kind;
  }

  /** The current state if it is of this kind (typed as that variant), else undefined. */
  when<K extends S['kind']>(kind: K): Extract<S, { kind: K }> | undefined {
    return this.#current.kind === kind ? (this.#current as Extract<S, { kind: K }>) : undefined;
  }

  /** Whether the table allows a move from the current state to `kind`. */
  can(kind: S['kind']): boolean {
    return this.#allowed(this.#current.kind).includes(kind);
  }

  /**
   * Moves to `next`, or throws `InvalidTransitionError` leaving the state as it
   * was. A move to the same kind (new data for the same state, allowed only
   * when the table lists it) is not logged: the state did not change.
   */
  to<N extends S>(next: N): N {
    const from: S['kind'] = this.#current.kind;
    if (!this.#allowed(from).includes(next.kind)) throw new InvalidTransitionError(this.#name, from, next.kind);
    this.#current = next;
    if (from !== next.kind) this.#logger.debug({ from, to: next.kind }, 'state changed');
    return next;
  }

  #allowed(kind: S['kind']): readonly S['kind'][] {
    return (this.#transitions as Record<string, readonly S['kind'][]>)[kind] ?? [];
  }
}
