/**
 * The parent's handle on one pooled child process.
 *
 * States, kept in a `StateMachine` (each change logged at debug; any other
 * move throws `InvalidTransitionError`):
 *   starting → idle            (the child said `ready`)
 *   idle     → reserved        (the engine picked it for a run; synchronous, so no two runs get it)
 *   reserved → busy            (`run`; `busy` carries the run: its id, limit, urgency and sink)
 *   reserved → idle            (`release`: the run settled before it was dispatched)
 *   busy     → busy            (`abandonRun`: the same run, with no sink left to hear of it)
 *   busy     → idle            (the child reported the run's end)
 *   busy     → draining        (`stopRun`: the parent ends the run; `draining` carries its id, sink, kill timer and `drained`)
 *   draining → idle            (the child confirmed `run-stopped` within the grace period)
 *   any      → dead            (the process exited; after `kill`, a crash, or a failed start; a busy run ends `crash`)
 * A dead child is never reused; the engine forks a replacement. Beside the
 * state: the process handle (one per child, from `start()` to its exit), and
 * facts about the process that no state owns (its runs so far, its stderr's
 * tail, whether its warm spare thread has booted, whether it waits for the
 * pool's permit to boot a thread (`boot-gate.ts`): the child boots threads
 * whatever the parent's state).
 */
import { fork } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import type { Logger } from 'pino';
import type { ExecutionRequest } from '../runtime/execution-request.ts';
import { LanesError } from '../errors/lanes-error.ts';
import { StateMachine } from '../state-machine.ts';
import type { TransitionTable } from '../state-machine.ts';
import type { ChildConfig, ChildToParent, ParentToChild } from './ipc-messages.ts';
import { endForChildExit } from '../runtime/run-ends.ts';
import { deliverReport } from './run-sink.ts';
import type { RunSink } from './run-sink.ts';
export type { RunSink } from './run-sink.ts';

type ChildLifecycle =
  | { readonly kind: 'starting' }
  | { readonly kind: 'idle' }
  | { readonly kind: 'reserved' }
  /** `sink` is gone once the run was abandoned: the process is being killed and nobody hears of the run again. */
  | { readonly kind: 'busy'; readonly runId: string; readonly memoryLimitMb: number; readonly urgent: boolean; readonly sink: RunSink | undefined }
  /** `drained` is called once: at `run-drained`, or when the child stops or dies without it. */
  | { readonly kind: 'draining'; readonly runId: string; readonly memoryLimitMb: number; readonly killTimer: NodeJS.Timeout; readonly sink: RunSink | undefined; readonly drained: () => void }
  | { readonly kind: 'dead' };

export type PooledChildState = ChildLifecycle['kind'];

const TRANSITIONS: TransitionTable<ChildLifecycle> = {
  starting: ['idle', 'dead'],
  idle: ['reserved', 'dead'],
  reserved: ['busy', 'idle', 'dead'],
  busy: ['busy', 'idle', 'draining', 'dead'],
  draining: ['idle', 'dead'],
  dead: [],
};

export interface PooledChildOptions {
  id: number;
  config: ChildConfig;
  /** The child's code: the bundle of child-main.ts (`thread-bundle.ts`), else its source. */
  entry: string | undefined;
  /** `--max-old-space-size` of the child's main isolate. */
  heapMb: number;
  env: Record<string, string>;
  /** Extra Node flags, e.g. the permission model's (`child-permissions.ts`). */
  execArgv: readonly string[];
  killGraceMs: number;
  logger: Logger;
  /** Every state change, for the engine's pool bookkeeping. */
  onState: (child: PooledChild, state: PooledChildState) => void;
  /** The child asks to boot a thread (`ChildConfig.bootPermits`); `grantBoot()` answers. */
  onBootRequest?: (child: PooledChild) => void;
  /** A thread's boot in the child ended (booted or died). */
  onBootEnded?: (child: PooledChild) => void;
}

const CHILD_ENTRY = new URL('./child-main.ts', import.meta.url);
const STDERR_TAIL_CHARS = 4096;

export class ChildStartError extends LanesError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('CHILD_START_FAILED', message, options);
  }
}

export class PooledChild {
  readonly id: number;
  readonly #state: StateMachine<ChildLifecycle>;
  #process: ChildProcess | undefined;
  #stderrTail = '';
  readonly #options: PooledChildOptions;
  readonly #logger: Logger;
  readonly #exited: Promise<void>;
  #markExited: () => void = () => undefined;
  #runsFinished = 0;
  #spareReady = false;
  #bootWaiting = false;
  /** Undefined until the child's first run. */
  #lastRunUrgent: boolean | undefined;

  constructor(options: PooledChildOptions) {
    this.id = options.id;
    this.#options = options;
    this.#logger = options.logger.child({ childId: options.id });
    this.#state = new StateMachine<ChildLifecycle>({ name: `pooled child ${options.id}`, initial: { kind: 'starting' }, transitions: TRANSITIONS, logger: this.#logger });
    this.#exited = new Promise((resolve) => (this.#markExited = resolve));
  }

  get state(): PooledChildState {
    return this.#state.kind;
  }

  get pid(): number | undefined {
    return this.#process?.pid;
  }

  /** The run this child is executing (or draining), if any. */
  get runId(): string | undefined {
    return this.#run()?.runId;
  }

  /** Runs this child has finished (its thread ended or was stopped): the engine recycles old children. */
  get runsFinished(): number {
    return this.#runsFinished;
  }

  /** Whether the child's warm spare thread has booted (and not been used since). */
  get spareReady(): boolean {
    return this.#spareReady;
  }

  /** Whether the child waits for the pool's permit to boot a thread (its next spare, or its run's). */
  get bootWaiting(): boolean {
    return this.#bootWaiting;
  }

  /** Whether the last run this child was given was urgent: its next spare is likely an urgent run's too. */
  get lastRunUrgent(): boolean {
    return this.#lastRunUrgent === true;
  }

  /**
   * Whether its spare boots at the urgent runs' nice value (child-main.ts):
   * a child's first spare, and the one after an urgent run. Others boot at
   * the engine's `backgroundNice`, and a thread never regains priority.
   */
  get spareForUrgent(): boolean {
    return this.#lastRunUrgent !== false;
  }

  /** Whether the run this child executes is urgent (`RunRequest.urgent`); undefined when it runs none. */
  get urgentRun(): boolean | undefined {
    return this.#state.when('busy')?.urgent;
  }

  get runMemoryLimitMb(): number | undefined {
    return this.#run()?.memoryLimitMb;
  }

  /** The run this child holds: executing (`busy`) or being stopped (`draining`). */
  #run(): Extract<ChildLifecycle, { kind: 'busy' | 'draining' }> | undefined {
    return this.#state.when('busy') ?? this.#state.when('draining');
  }

  /** Moves to `next`; a change of state (not new data for the same one) is told to the pool. */
  #to(next: ChildLifecycle): void {
    const from = this.#state.kind;
    this.#state.to(next);
    if (from !== next.kind) this.#options.onState(this, next.kind);
  }

  /** Forks the process and resolves once it is ready for a run. */
  start(): Promise<void> {
    const { config, heapMb, env, execArgv, entry } = this.#options;
    const child = fork(entry ?? CHILD_ENTRY, [JSON.stringify(config)], {
      execPath: process.execPath,
      // Run threads inherit these flags (vm.SourceTextModule, how @openfn/runtime links job modules, is behind one).
      execArgv: [`--max-old-space-size=${heapMb}`, '--experimental-vm-modules', '--disable-warning=ExperimentalWarning', ...execArgv],
      env,
      serialization: 'advanced',
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      // Its own session: a Ctrl-C (SIGINT to the terminal's process group) or a `kill -TERM -PGID`
      // reaches the worker only, which drains; only the worker decides the child's fate. The child
      // still dies with the worker: it exits when the IPC channel closes (child-main.ts).
      detached: true,
    });
    this.#process = child;
    child.stdout?.on('data', (chunk: Buffer) => this.#logger.debug({ childPid: child.pid, output: chunk.toString('utf8').slice(0, 2000) }, 'child stdout'));
    child.stderr?.on('data', (chunk: Buffer) => {
      const text = chunk.toString('utf8');
      this.#stderrTail = (this.#stderrTail + text).slice(-STDERR_TAIL_CHARS);
      this.#logger.debug({ childPid: child.pid, output: text.slice(0, 2000) }, 'child stderr');
    });
    return new Promise<void>((resolve, reject) => {
      child.on('message', (message: ChildToParent) => {
        if (message.type === 'ready') {
          if (this.#state.kind === 'starting') this.#to({ kind: 'idle' });
          resolve();
          return;
        }
        this.#onMessage(message);
      });
      child.on('error', (error) => this.#logger.warn({ childPid: child.pid, err: error }, 'child process error'));
      child.on('exit', (code, signal) => {
        const before = this.#state.current;
        if (before.kind === 'draining') {
          clearTimeout(before.killTimer);
          before.drained();
        }
        if (before.kind !== 'dead') this.#to({ kind: 'dead' });
        this.#logger.info({ childPid: child.pid, code, signal }, 'child process exited');
        if (before.kind === 'busy') before.sink?.onEnd(endForChildExit(code, signal, this.#stderrTail));
        const wasStarting = before.kind === 'starting';
        if (wasStarting) reject(new ChildStartError(`child process exited during start (code ${code}, signal ${signal}): ${this.#stderrTail.slice(-500)}`));
        this.#markExited();
      });
    });
  }

  #onMessage(message: ChildToParent): void {
    if (message.type === 'boot-request') {
      this.#bootWaiting = true;
      this.#options.onBootRequest?.(this);
      return;
    }
    if (message.type === 'boot-ended') {
      if (message.spare) this.#spareReady = true;
      this.#options.onBootEnded?.(this);
      return;
    }
    const run = this.#run();
    if (!run || message.type === 'ready' || message.runId !== run.runId) return;
    if (run.kind === 'draining') {
      // The parent is ending this run: what the thread reported before the stop is passed on until the child
      // says it has all been sent (`run-drained`), then only the child's confirmation that the thread is gone matters.
      if (deliverReport(run.sink, message)) return;
      switch (message.type) {
        case 'run-ended':
          // It ended on its own before the stop reached it: that end is the true one (a sink that settles once keeps the first).
          run.sink?.onEnd(message.end);
          run.drained();
          return;
        case 'run-drained':
          run.drained();
          return;
        case 'run-stopped':
          clearTimeout(run.killTimer);
          run.drained();
          this.#runsFinished++;
          this.#to({ kind: 'idle' });
          return;
        default:
          return;
      }
    }
    if (deliverReport(run.sink, message)) return;
    switch (message.type) {
      case 'credential-request':
        run.sink?.onCredentialRequest(message.requestId, message.credentialId);
        return;
      case 'run-ended':
        this.#runsFinished++;
        this.#to({ kind: 'idle' });
        run.sink?.onEnd(message.end);
        return;
      case 'run-drained':
      case 'run-stopped':
        return;
    }
  }

  #send(message: ParentToChild): void {
    if (this.#process?.connected) this.#process.send(message);
  }

  /** Takes an idle child for a run (or for retiring it); throws `InvalidTransitionError` on any other. */
  reserve(): void {
    this.#to({ kind: 'reserved' });
  }

  release(): void {
    if (this.#state.kind === 'reserved') this.#to({ kind: 'idle' });
  }

  /** Sends a run to a reserved child; throws `InvalidTransitionError` on any other. */
  run(runId: string, request: ExecutionRequest, memoryLimitMb: number, sink: RunSink, urgent = false): void {
    this.#to({ kind: 'busy', runId, memoryLimitMb, urgent, sink });
    this.#spareReady = false;
    this.#lastRunUrgent = urgent;
    // The boot this child waits for is now its run's: asked again, it ranks as that run does.
    if (this.#bootWaiting) this.#options.onBootRequest?.(this);
    this.#send({ type: 'run', runId, request, memoryLimitMb, urgent });
  }

  replyCredential(runId: string, requestId: number, result: { ok: true; body: unknown } | { ok: false; message: string }): void {
    if (this.#state.when('busy')?.runId !== runId) return;
    this.#send(result.ok ? { type: 'credential-reply', runId, requestId, ok: true, body: result.body } : { type: 'credential-reply', runId, requestId, ok: false, message: result.message });
  }

  /** Lets the child boot the thread it asked for (`onBootRequest`). */
  grantBoot(): void {
    this.#bootWaiting = false;
    this.#send({ type: 'boot-permit' });
  }

  preload(entryPaths: string[]): void {
    if (this.#state.kind !== 'dead') this.#send({ type: 'preload', entryPaths });
  }

  /**
   * The parent ends the run: ask the child to terminate the run's thread,
   * and kill the child if that does not happen within the grace period (a
   * thread stuck in native code cannot be terminated). The child first
   * passes on what the thread reported and it had not yet sent (its
   * mailbox); those reports reach the run's sink, then `drained` is called
   * (also when the child stops or dies without saying so), once.
   */
  stopRun(drained: () => void): void {
    const run = this.#state.when('busy');
    if (!run) {
      drained();
      return;
    }
    const { runId, memoryLimitMb, sink } = run;
    const killTimer = setTimeout(() => {
      this.#logger.warn({ childPid: this.pid, runId }, 'run thread did not stop in time, killing child');
      void this.kill();
    }, this.#options.killGraceMs);
    let called = false;
    const once = (): void => {
      if (called) return;
      called = true;
      drained();
    };
    this.#to({ kind: 'draining', runId, memoryLimitMb, killTimer, sink, drained: once });
    this.#send({ type: 'stop-run', runId });
  }

  /** Ends the run the hard way: the sink hears nothing more, the process is SIGKILLed. */
  abandonRun(): void {
    const run = this.#state.when('busy');
    if (run) this.#to({ ...run, sink: undefined });
    void this.kill();
  }

  /** SIGKILLs the process; resolves once it has exited. Idempotent. */
  async kill(): Promise<void> {
    if (this.#process && this.#process.exitCode === null && this.#process.signalCode === null) this.#process.kill('SIGKILL');
    if (this.#process) await this.#exited;
  }
}
