/**
 * A task the server runs every `intervalMs` that never overlaps itself: a
 * run that outlasts the period (a slow database) is not stacked with the
 * next one, and none starts after stop(). The lease sweeper and the
 * retention sweeper are each one of these around their own sweep.
 *
 * States: idle → running → stopped (or idle → stopped). The interval timer
 * and whether a run is in flight belong to the running state.
 */
import type { Logger } from 'pino';
import { StateMachine } from '../state-machine.ts';

type PeriodicState = { kind: 'idle' } | { kind: 'running'; timer: NodeJS.Timeout; busy: boolean } | { kind: 'stopped' };

export interface PeriodicTaskOptions {
  /** Names the task in its state-change logs and transition errors (`lease sweeper`). */
  name: string;
  intervalMs: number;
  /** Also run once at start(), not only after the first period. */
  runAtStart?: boolean;
  /** One run. It should handle its own failures; a rejection is logged here and the next period runs again. */
  run: () => Promise<unknown>;
  logger: Logger;
}

export class PeriodicTask {
  readonly #name: string;
  readonly #intervalMs: number;
  readonly #runAtStart: boolean;
  readonly #run: () => Promise<unknown>;
  readonly #logger: Logger;
  readonly #state: StateMachine<PeriodicState>;

  constructor(options: PeriodicTaskOptions) {
    this.#name = options.name;
    this.#intervalMs = options.intervalMs;
    this.#runAtStart = options.runAtStart === true;
    this.#run = options.run;
    this.#logger = options.logger;
    this.#state = new StateMachine<PeriodicState>({
      name: options.name,
      initial: { kind: 'idle' },
      transitions: { idle: ['running', 'stopped'], running: ['stopped'], stopped: [] },
      logger: options.logger,
    });
  }

  /** Whether stop() was called: a run in flight checks it to end early. */
  get stopped(): boolean {
    return this.#state.kind === 'stopped';
  }

  /** Starts the timer. Idempotent; a stopped task does not start again. */
  start(): void {
    if (this.#state.kind !== 'idle') return;
    const timer = setInterval(() => this.#tick(), this.#intervalMs);
    timer.unref();
    this.#state.to({ kind: 'running', timer, busy: false });
    if (this.#runAtStart) this.#tick();
  }

  /** No run starts after this; a run in flight is not awaited (it sees `stopped`). Idempotent. */
  stop(): void {
    const running = this.#state.when('running');
    if (running) clearInterval(running.timer);
    if (this.#state.kind !== 'stopped') this.#state.to({ kind: 'stopped' });
  }

  #tick(): void {
    const running = this.#state.when('running');
    if (!running || running.busy) return;
    running.busy = true;
    void this.#run()
      .catch((error: unknown) => {
        this.#logger.error({ err: error, task: this.#name }, 'periodic task failed');
      })
      .finally(() => {
        running.busy = false;
      });
  }
}
