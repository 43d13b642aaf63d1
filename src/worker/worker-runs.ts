/**
 * The runs of one worker: those waiting in a lane's backlog (held: their
 * channel joined early and heartbeated) and those executing (active), with
 * the server's cancels and the shutdown's kill applied to whichever a run is.
 */
import type { Channel } from 'phoenix';
import type { Logger } from 'pino';
import type { WorkerConfig } from '../config/worker-config.ts';
import type { EngineAbortReason, RunExecutor } from '../engine/types.ts';
import { pinsQueues } from '../lanes/parse-workloops.ts';
import type { LaneSpec } from '../lanes/parse-workloops.ts';
import { CAPABILITY_RUN_HEARTBEAT } from '../protocol/events.ts';
import type { ClaimedRun } from '../protocol/messages.ts';
import { ERROR_TYPES } from '../protocol/reasons.ts';
import type { SigningKey } from '../protocol/tokens.ts';
import { runAttempt } from './run-attempt.ts';
import { startHeartbeat } from './run-heartbeat.ts';
import type { RunChannels } from './run-attempt.ts';
import { joinRunChannel, runJoinDeadline } from './run-join.ts';
import type { WorkerMetrics } from './worker-metrics.ts';

/** How a run the server cancelled (`run_cancel`) is ended. */
const CANCELLED: EngineAbortReason = Object.freeze({ reason: 'cancel', errorType: ERROR_TYPES.cancelled, message: 'the run was cancelled' });

/** A run waiting in its lane's backlog: its channel joined early and heartbeated until it starts. */
interface HeldRun {
  joined: Promise<Channel | null>;
  stop: () => void;
  /** The server cancelled it (`run_cancel`) while it waited: it is reported cancelled, never executed. */
  cancelled: boolean;
}

interface ActiveRun {
  lane: string;
  controller: AbortController;
  done: Promise<void>;
}

export interface WorkerRunsOptions {
  config: WorkerConfig;
  channels: RunChannels;
  executor: RunExecutor;
  runPublicKey: SigningKey | null;
  metrics: WorkerMetrics;
  logger: Logger;
}

export class WorkerRuns {
  readonly #options: WorkerRunsOptions;
  readonly #logger: Logger;
  readonly #runs = new Map<string, ActiveRun>();
  readonly #held = new Map<string, HeldRun>();
  /** Set once the shutdown timeout passed: runs started after that (from a claim in flight) are killed at once. */
  #runAbortReason: EngineAbortReason | null = null;
  /** Aborted with `killAll`: the joins of backlog runs stop waiting for a server (run-join.ts). */
  readonly #stopping = new AbortController();

  constructor(options: WorkerRunsOptions) {
    this.#options = options;
    this.#logger = options.logger;
  }

  /** Runs executing now. */
  get size(): number {
    return this.#runs.size;
  }

  get activeRunIds(): string[] {
    return [...this.#runs.keys()];
  }

  /** Settles when every run executing now has ended (a run started meanwhile is not awaited). */
  whenEnded(): Promise<void> {
    return Promise.all([...this.#runs.values()].map((run) => run.done)).then(() => undefined);
  }

  /**
   * A run waits in its lane's backlog: its lease runs from the claim, so when
   * the server offers `run_heartbeat` the run's channel is joined now and
   * heartbeated until the run starts (which then uses that channel).
   */
  hold(run: ClaimedRun): void {
    const { channels, config } = this.#options;
    if (!channels.features.capabilities.has(CAPABILITY_RUN_HEARTBEAT) || this.#held.has(run.id)) return;
    const logger = this.#logger.child({ runId: run.id });
    const channel = channels.runChannel(run.id, run.token);
    let stopped = false;
    let heartbeat: { stop(): void } | null = null;
    const joined = joinRunChannel(channel, {
      timeoutMs: config.messageTimeoutMs,
      deadline: runJoinDeadline(run.token, channels.features, Date.now(), config.messageTimeoutMs),
      signal: this.#stopping.signal,
      logger,
    }).then(
      () => {
        if (!stopped) heartbeat = startHeartbeat(channel, channels.features, logger);
        return channel;
      },
      async (error: unknown) => {
        logger.error({ err: error }, 'could not join the channel of a backlog run; it will not be executed');
        await channels.leaveRunChannel(channel);
        return null;
      },
    );
    const held: HeldRun = {
      joined,
      stop: () => {
        stopped = true;
        heartbeat?.stop();
      },
      cancelled: false,
    };
    this.#held.set(run.id, held);
    logger.info('run waits in the lane backlog, heartbeated');
  }

  /** Starts a claimed run (on the channel it held, if it waited); settles when its attempt has ended. */
  start(run: ClaimedRun, lane: LaneSpec, memoryMb: number | undefined): Promise<void> {
    const { metrics } = this.#options;
    const controller = new AbortController();
    if (this.#runAbortReason !== null) controller.abort(this.#runAbortReason);
    const held = this.#held.get(run.id);
    this.#held.delete(run.id);
    held?.stop();
    if (held?.cancelled === true) controller.abort(CANCELLED);
    const logger = this.#logger.child({ lane: lane.id, runId: run.id });
    const done = runAttempt({
      run,
      lane: lane.id,
      urgent: pinsQueues(lane),
      ...(memoryMb === undefined ? {} : { memoryMb }),
      config: this.#options.config,
      channels: this.#options.channels,
      executor: this.#options.executor,
      runPublicKey: this.#options.runPublicKey,
      signal: controller.signal,
      logger,
      ...(held === undefined ? {} : { joined: held.joined }),
      onStarted: (phases) => metrics.runStarted(lane.id, phases),
    })
      .then((result) => metrics.runFinished(lane.id, result.reason, result.durationMs))
      .catch((error: unknown) => {
        logger.error({ err: error }, 'run attempt failed');
        metrics.runFinished(lane.id, null, 0);
      })
      .finally(() => {
        this.#runs.delete(run.id);
      });
    this.#runs.set(run.id, { lane: lane.id, controller, done });
    // After runAttempt() was called: a run whose claim reply carried its plan is posted to the engine
    // within that call, and this line (a write, at the default level) is not on its way.
    logger.info('run claimed');
    return done;
  }

  /** The server cancelled a run (`run_cancel`): end it now, reported `cancel`/`CancelError`. */
  cancel(runId: string): void {
    const held = this.#held.get(runId);
    if (held !== undefined) {
      held.cancelled = true;
      this.#logger.info({ runId }, 'run cancelled by the server while in the backlog');
      return;
    }
    const run = this.#runs.get(runId);
    if (run === undefined) {
      this.#logger.debug({ runId }, 'run:cancel for a run not active here');
      return;
    }
    this.#logger.info({ runId, lane: run.lane }, 'run cancelled by the server');
    run.controller.abort(CANCELLED);
  }

  /** The shutdown timeout passed: kills the runs executing, and any run started from now on. */
  killAll(): void {
    const reason: EngineAbortReason = { reason: 'kill', errorType: ERROR_TYPES.shutdown, message: 'the worker shut down before the run finished' };
    this.#runAbortReason = reason;
    this.#stopping.abort();
    if (this.#runs.size > 0) this.#logger.warn({ runIds: [...this.#runs.keys()] }, 'killing runs still active at shutdown');
    for (const run of this.#runs.values()) run.controller.abort(reason);
  }
}
