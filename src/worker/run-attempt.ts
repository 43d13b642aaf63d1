/**
 * One claimed run, from its token to `run:complete` (PROTOCOL.md, `run:<id>`):
 * verify the token (when the server's public key is known), join `run:<id>`,
 * fetch the plan and the input, execute, and report every event in order.
 *
 * With `claim_plans` the claim reply brought the plan (and a small input):
 * the run is handed to the engine at once, while `run:<id>` is joined beside
 * it; its events wait in the reporter until the join is answered. The join
 * is made again until it succeeds (run-join.ts: after a timeout, a passing
 * refusal, a failover to another server), so a server that dies between the
 * claim and the join loses nothing. Should the join be refused for good, or
 * the run's lease run out first, the run is killed and nothing is reported,
 * as when a join is refused before execution.
 *
 * Whatever happens after the join, the run ends with a `run:complete` push:
 * a failed fetch is `exception` with a named `error_type`, an abort before
 * the engine started is `kill`. Before the join nothing can be reported (a
 * bad token, a refused join): the run is logged and the server's lease or
 * lost sweep takes it back.
 */
import type { Channel } from 'phoenix';
import type { Logger } from 'pino';
import type { WorkerConfig } from '../config/worker-config.ts';
import type { EngineAbortReason, EngineEvent, EngineRunComplete, RunExecutor } from '../engine/types.ts';
import {
  CAPABILITY_CLAIM_PLANS,
  CAPABILITY_IDEMPOTENT_EVENTS,
  FETCH_CREDENTIAL,
  RUN_COMPLETE,
  RUN_START,
  STEP_COMPLETE,
  STEP_START,
} from '../protocol/events.ts';
import type { ClaimedRun, RunPlan } from '../protocol/messages.ts';
import { ERROR_TYPES } from '../protocol/reasons.ts';
import { credentialBodyShape } from '../protocol/run-event-schemas.ts';
import type { ExitReason } from '../protocol/reasons.ts';
import { timestampMicros } from '../protocol/timestamp.ts';
import { verifyRunToken } from '../protocol/tokens.ts';
import type { SigningKey } from '../protocol/tokens.ts';
import { CredentialRedactor } from '../protocol/credential-redactor.ts';
import { startHeartbeat } from './run-heartbeat.ts';
import type { Heartbeat } from './run-heartbeat.ts';
import type { ServerFeatures } from './server-features.ts';
import { resolveLimits } from './resolve-limits.ts';
import { RunEventMapper } from './run-event-mapper.ts';
import { RunReporter } from './run-reporter.ts';
import { joinRunChannel, runJoinDeadline } from './run-join.ts';
import { RunFailure, errorMessage, fetchDataclip, fetchPlan, readInlineDataclip } from './run-inputs.ts';

/** What a run needs from the worker's connection. */
export interface RunChannels {
  readonly features: ServerFeatures;
  /** Aborted when the worker closes its connection: a run's events get no reply after that. */
  readonly closed: AbortSignal;
  runChannel(runId: string, token: string): Channel;
  leaveRunChannel(channel: Channel): Promise<void>;
}

export interface RunAttemptOptions {
  run: ClaimedRun;
  lane: string;
  /** The lane pins its queues (`pinsQueues`): the engine runs it as urgent (`RunRequest.urgent`). */
  urgent?: boolean;
  /** The memory the lane reserved for this run, in MB: the run's limit is never above it. */
  memoryMb?: number;
  config: WorkerConfig;
  channels: RunChannels;
  executor: RunExecutor;
  runPublicKey: SigningKey | null;
  /** Aborted by the worker's shutdown; its reason is an `EngineAbortReason`. */
  signal: AbortSignal;
  logger: Logger;
  /**
   * The run's channel, joined (and heartbeated) while the run waited in its
   * lane's backlog; resolves null when that join failed for good (the run is
   * then not executed). Without it the run joins its channel itself.
   */
  joined?: Promise<Channel | null>;
  /** When the run's thread has started it: how long the claim → dispatch and dispatch → thread start legs took. */
  onStarted?: (phases: RunStartPhases) => void;
}

/** The time between a claim and `run:start`, in its two legs (worker metrics). */
export interface RunStartPhases {
  /** Claim reply → the engine is handed the run (join, token check, fetch:plan, fetch:dataclip). */
  claimToDispatchMs: number;
  /** The engine is handed the run → its thread takes it (adaptors, a free child, two message hops). */
  dispatchToStartMs: number;
}

/** How the run ended, as far as the worker knows; `null` reason when it was never reported. */
export interface RunAttemptResult {
  reason: ExitReason | null;
  durationMs: number;
}

/** How a run is ended when its channel's join was refused after it had been handed to the engine (`claim_plans`). */
const JOIN_REFUSED: EngineAbortReason = Object.freeze({ reason: 'kill', errorType: ERROR_TYPES.shutdown, message: 'the run channel could not be joined' });

export async function runAttempt(options: RunAttemptOptions): Promise<RunAttemptResult> {
  const { run, config, channels, logger } = options;
  const started = performance.now();
  const elapsed = (): number => performance.now() - started;

  if (options.runPublicKey !== null) {
    try {
      const verified = await verifyRunToken(options.runPublicKey, run.token);
      if (verified.runId !== run.id) throw new Error(`token opens run ${verified.runId}`);
    } catch (error) {
      logger.error({ err: error }, 'run token failed verification; run not executed');
      return { reason: null, durationMs: elapsed() };
    }
  }

  const held = options.joined === undefined ? undefined : await options.joined;
  if (held === null) {
    // worker-runs.ts logged why (the held join's error).
    logger.debug('the run channel could not be joined while the run waited; run not executed');
    return { reason: null, durationMs: elapsed() };
  }
  const channel = held ?? channels.runChannel(run.id, run.token);
  // claim_plans: the plan came with the claim, so the run need not wait for the join.
  const prefetched = run.plan !== undefined && channels.features.capabilities.has(CAPABILITY_CLAIM_PLANS) ? run.plan : null;
  const heartbeat: { current: Heartbeat | null } = { current: null };
  let ended = false;
  const join = (): Promise<void> =>
    joinRunChannel(channel, {
      timeoutMs: config.messageTimeoutMs,
      deadline: runJoinDeadline(run.token, channels.features, Date.now(), config.messageTimeoutMs),
      signal: options.signal,
      logger,
    });
  // With the plan at hand the run goes to the engine first: the join is sent on the next turn of the
  // event loop, once the run is on its way to its thread (its events wait for the join either way).
  const joining = held !== undefined ? Promise.resolve() : prefetched === null ? join() : new Promise<void>((resolve) => setImmediate(resolve)).then(join);
  const joined: Promise<boolean> = joining.then(
    () => {
      logger.debug('joined run channel');
      if (!ended) heartbeat.current = startHeartbeat(channel, channels.features, logger);
      return true;
    },
    (error: unknown) => {
      logger.error({ err: error }, prefetched === null ? 'could not join the run channel; run not executed' : 'could not join the run channel; run killed, not reported');
      return false;
    },
  );
  try {
    if (prefetched === null && !(await joined)) return { reason: null, durationMs: elapsed() };
    const reason = await executeAndReport(options, channel, started, { plan: prefetched, joined });
    return { reason, durationMs: elapsed() };
  } finally {
    ended = true;
    heartbeat.current?.stop();
    await joined;
    await channels.leaveRunChannel(channel);
  }
}

/** The plan the claim reply carried (null: fetch it), and the run channel's join (true once joined). */
interface RunStartContext {
  plan: RunPlan | null;
  joined: Promise<boolean>;
}

/**
 * The run's plan and input: at once (no promise) when the claim reply carried
 * both (`claim_plans`), so that the run reaches the engine in the same turn
 * as its claim reply; else fetched on the run channel.
 */
function readInputs(options: RunAttemptOptions, channel: Channel, start: RunStartContext): RunInputs | Promise<RunInputs> {
  const { run } = options;
  const plan = start.plan;
  if (plan === null) return fetchPlan(channel, options.config.messageTimeoutMs).then((fetched) => readInput(options, channel, start, fetched));
  // A plan without a dataclip (OpenFn's lightning-mock sends such plans) starts from an empty state.
  if (plan.dataclip_id === '') return { plan, input: {} };
  if (run.dataclip !== undefined) return { plan, input: readInlineDataclip(plan.dataclip_id, run.dataclip) };
  return readInput(options, channel, start, plan);
}

interface RunInputs {
  plan: RunPlan;
  input: unknown;
}

async function readInput(options: RunAttemptOptions, channel: Channel, start: RunStartContext, plan: RunPlan): Promise<RunInputs> {
  if (plan.dataclip_id === '') return { plan, input: {} };
  // An input too large for the claim reply is fetched once the channel is joined.
  if (start.plan !== null && !(await start.joined)) throw new RunFailure(ERROR_TYPES.dataclip, 'the run channel could not be joined');
  return { plan, input: await fetchDataclip(channel, plan.dataclip_id, options.config.messageTimeoutMs) };
}

async function executeAndReport(options: RunAttemptOptions, channel: Channel, claimedAt: number, start: RunStartContext): Promise<ExitReason | null> {
  const { run, config, channels, logger } = options;
  const idempotent = channels.features.capabilities.has(CAPABILITY_IDEMPOTENT_EVENTS);

  let plan: RunPlan | null = null;
  let input: unknown;
  let failure: RunFailure | null = null;
  try {
    const read = readInputs(options, channel, start);
    ({ plan, input } = read instanceof Promise ? await read : read);
  } catch (error) {
    failure = error instanceof RunFailure ? error : new RunFailure(ERROR_TYPES.plan, errorMessage(error), { cause: error });
  }

  const limits = resolveLimits(config, plan?.options, options.memoryMb);
  const mapper = new RunEventMapper({
    runId: run.id,
    plan: plan ?? emptyPlan(run.id),
    keyLogs: idempotent,
    payloadLimitBytes: limits.payloadLimitMb * 1024 * 1024,
  });
  const reporter = new RunReporter({
    runId: run.id,
    channel,
    messageTimeoutMs: config.messageTimeoutMs,
    batchLogs: config.batchLogs,
    idempotent,
    logger,
    batchKey: () => mapper.batchKey(),
    joined: start.joined,
    closed: channels.closed,
  });

  if (plan === null || failure !== null || options.signal.aborted) {
    // The engine never saw this run: start and complete it here, so the server hears how it ended.
    const end: EngineRunComplete =
      failure !== null
        ? { type: 'run-complete', reason: 'exception', errorType: failure.errorType, errorMessage: failure.message, finalState: null, timestamp: timestampMicros() }
        : abortedEnd(options.signal);
    if (failure !== null) logger.error({ errorType: failure.errorType, err: failure }, 'run could not start');
    reporter.send(RUN_START, { timestamp: timestampMicros() });
    reporter.send(RUN_COMPLETE, mapper.runComplete(end));
    await reporter.drained();
    reporter.close();
    return (await start.joined) ? end.reason : null;
  }

  // A refused join ends a run already handed to the engine: nothing of it can be reported.
  const signal = AbortSignal.any([options.signal, runKiller(start.joined)]);

  let completeSent = false;
  const redactor = new CredentialRedactor();
  const onEvent = (event: EngineEvent): void => {
    try {
      switch (event.type) {
        case 'run-start':
          reporter.send(RUN_START, mapper.runStart(event));
          // From the thread's own stamp: the event itself may come later (thread-mailbox.ts).
          options.onStarted?.({ claimToDispatchMs: dispatchedAt - claimedAt, dispatchToStartMs: Number(event.timestamp) / 1000 - performance.timeOrigin - dispatchedAt });
          break;
        case 'step-start':
          reporter.send(STEP_START, mapper.stepStart(event));
          break;
        case 'log':
          // Job logs belong to the server; the worker's own output shows them only at debug.
          logger.debug({ level: event.level, source: event.source, stepId: event.stepId }, 'job log');
          reporter.log(mapper.log({ ...event, message: redactor.redact(event.message) }));
          break;
        case 'step-complete':
          reporter.send(STEP_COMPLETE, mapper.stepComplete(event));
          break;
        case 'run-complete':
          if (completeSent) return;
          completeSent = true;
          reporter.send(RUN_COMPLETE, mapper.runComplete(event));
          break;
      }
    } catch (error) {
      // onEvent must not throw into the engine; a mapping bug is logged and the run goes on.
      logger.error({ err: error, eventType: event.type }, 'could not map an engine event');
    }
  };

  const dispatchedAt = performance.now();
  const outcome = await options.executor.execute({
    runId: run.id,
    plan,
    input,
    limits,
    signal,
    urgent: options.urgent === true,
    onEvent,
    fetchCredential: async (credentialId) => {
      const body = await fetchCredential(reporter, credentialId);
      // Before the body reaches job code, so no line that could hold it goes out unredacted.
      redactor.add(body);
      return body;
    },
  });
  if (!completeSent) {
    // The engine promises a run-complete event; if it skipped one, its outcome stands in.
    completeSent = true;
    reporter.send(RUN_COMPLETE, mapper.runComplete(outcome));
  }
  await reporter.drained();
  reporter.close();
  logger.info({ reason: outcome.reason, errorType: outcome.errorType, reported: reporter.completeAccepted }, 'run finished');
  return (await start.joined) ? outcome.reason : null;
}

/** A signal aborted (`JOIN_REFUSED`) when the run channel's join fails. */
function runKiller(joined: Promise<boolean>): AbortSignal {
  const controller = new AbortController();
  void joined.then((ok) => {
    if (!ok) controller.abort(JOIN_REFUSED);
  });
  return controller.signal;
}

function abortedEnd(signal: AbortSignal): EngineRunComplete {
  const reason = signal.reason as Partial<EngineAbortReason> | undefined;
  return {
    type: 'run-complete',
    reason: reason?.reason ?? 'kill',
    errorType: reason?.errorType ?? ERROR_TYPES.shutdown,
    errorMessage: reason?.message ?? 'the worker stopped before the run started',
    finalState: null,
    timestamp: timestampMicros(),
  };
}

async function fetchCredential(reporter: RunReporter, credentialId: string): Promise<unknown> {
  let reply: unknown;
  try {
    // In the run's event queue, behind run:start and any log lines: one event in flight per run.
    reply = await reporter.request(FETCH_CREDENTIAL, { id: credentialId });
  } catch (error) {
    // The engine maps this to a CredentialError; the message never holds the credential itself.
    throw new RunFailure(ERROR_TYPES.credential, `could not fetch credential ${credentialId}: ${errorMessage(error)}`, { cause: error });
  }
  // The body goes to the job as its configuration: the same shape the server stores (never quoted: it is a secret).
  if (!credentialBodyShape.check(reply)) throw new RunFailure(ERROR_TYPES.credential, `credential ${credentialId} ${credentialBodyShape.firstProblem(reply)?.message ?? 'is not valid'}`);
  return reply;
}

function emptyPlan(runId: string): RunPlan {
  return { id: runId, dataclip_id: '', starting_node_id: '', triggers: [], jobs: [], edges: [] };
}
