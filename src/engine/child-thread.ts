/**
 * One run thread of an engine child (child-main.ts), from boot to death: its
 * worker, its boot state (`booting` → `ready` → `dead`), what it posts and
 * how it ends. The child decides which thread serves which run.
 */
import { Worker } from 'node:worker_threads';
import { endForOom, endForThreadExit, endForUncaught } from '../runtime/run-ends.ts';
import type { RunEnd } from '../runtime/run-ends.ts';
import { StateMachine } from '../state-machine.ts';
import type { StateLogger } from '../state-machine.ts';
import type { ChildToThread, ThreadData, ThreadToChild } from './ipc-messages.ts';
import { MailboxReader, createMailbox } from './thread-mailbox.ts';

/** A thread's state changes are not logged: the child keeps no log of its own (child-main.ts). */
const unlogged: StateLogger = { debug: () => undefined };

type ThreadState = { readonly kind: 'booting'; readonly markReady: (ok: boolean) => void } | { readonly kind: 'ready' } | { readonly kind: 'dead' };

/** One worker thread, from boot to death. */
export class RunThread {
  readonly worker: Worker;
  readonly memoryLimitMb: number;
  /** The nice value it booted at. */
  readonly nice: number;
  /** True once the thread has booted; false if it died first. */
  readonly ready: Promise<boolean>;
  readonly #state: StateMachine<ThreadState>;
  /** What the thread wrote in its run's first turn instead of posting it (thread-mailbox.ts). */
  readonly mailbox: MailboxReader;
  /** Set when the thread is given a run. */
  onMessage: ((message: ThreadToChild) => void) | undefined;
  onDeath: ((end: RunEnd) => void) | undefined;
  /** The run is stopped from outside: pass on what the thread reported and has not been sent. */
  onStop: (() => void) | undefined;

  constructor(url: URL, memoryLimitMb: number, data: ThreadData) {
    this.memoryLimitMb = memoryLimitMb;
    this.nice = data.nice;
    const { promise: ready, resolve: markReady } = Promise.withResolvers<boolean>();
    this.ready = ready;
    this.#state = new StateMachine<ThreadState>({
      name: 'run thread',
      initial: { kind: 'booting', markReady },
      transitions: { booting: ['ready', 'dead'], ready: ['dead'], dead: [] },
      logger: unlogged,
    });
    const mailbox = createMailbox();
    this.mailbox = new MailboxReader(mailbox);
    this.worker = new Worker(url, {
      resourceLimits: { maxOldGenerationSizeMb: memoryLimitMb },
      workerData: { ...data, mailbox },
      // No execArgv: the thread inherits the child's, including the permission model (an explicit list would drop it).
    });
    this.worker.on('message', (message: ThreadToChild) => {
      if (message.type !== 'ready') this.onMessage?.(message);
      else if (this.#state.kind === 'booting') {
        this.#state.to({ kind: 'ready' });
        // The thread's first message is its slowest to arrive (its receiving code has never run in that
        // isolate): a message it ignores takes that cost now, while the spare waits, not the run's.
        this.post({ type: 'warm' });
        markReady(true);
      }
    });
    this.worker.on('error', (error: Error & { code?: string }) => {
      if (!this.#die()) return;
      this.onDeath?.(
        error.code === 'ERR_WORKER_OUT_OF_MEMORY'
          ? endForOom(`the run's thread exhausted its heap limit of ${memoryLimitMb} MB`)
          : endForUncaught(error.name, error.message),
      );
    });
    this.worker.on('exit', (code) => {
      if (this.#die()) this.onDeath?.(endForThreadExit(code));
    });
  }

  get dead(): boolean {
    return this.#state.kind === 'dead';
  }

  /** Booted and alive: a run posted now reaches it without waiting for `ready`. */
  get booted(): boolean {
    return this.#state.kind === 'ready';
  }

  /** Moves to `dead` (a booting thread's `ready` then says false); false when it already was. */
  #die(): boolean {
    const before = this.#state.current;
    if (before.kind === 'dead') return false;
    this.#state.to({ kind: 'dead' });
    if (before.kind === 'booting') before.markReady(false);
    return true;
  }

  post(message: ChildToThread): void {
    this.worker.postMessage(message);
  }

  /** Ends the thread; its death is expected, so nobody hears of it. */
  async terminate(): Promise<void> {
    this.onDeath = undefined;
    this.onMessage = undefined;
    this.onStop = undefined;
    this.#die();
    await this.worker.terminate();
  }
}
