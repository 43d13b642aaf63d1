/**
 * One claimed run, from its token to `run:complete` (PROTOCOL.md, `run:<id>`):
 * verify the token (when the server's public key is known), join `run:<id>`,
 * fetch the plan and the input, execute, and report every event in order.
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
  CAPABILITY_IDEMPOTENT_EVENTS,
  CAPABILITY_RUN_HEARTBEAT,
  FETCH_CREDENTIAL,
  FETCH_DATACLIP,
  FETCH_PLAN,
  RUN_COMPLETE,
  RUN_HEARTBEAT,
  RUN_START,
  STEP_COMPLETE,
  STEP_START,
} from '../protocol/events.ts';
import type { ClaimedRun, RunPlan } from '../protocol/messages.ts';
import { ERROR_TYPES } from '../protocol/reasons.ts';
import type { ExitReason } from '../protocol/reasons.ts';
import { timestampMicros } from '../protocol/timestamp.ts';
import { verifyRunToken } from '../protocol/tokens.ts';
import type { SigningKey } from '../protocol/tokens.ts';
import { PushRejectedError } from './channel-errors.ts';
import { CredentialRedactor } from '../protocol/credential-redactor.ts';
import { decodeDataclip } from './dataclip-reply.ts';
import { readPlanReply } from './plan-reply.ts';
import { pushAndWait, readWithResend } from './push.ts';
import type { ServerFeatures } from './server-features.ts';
import { resolveLimits } from './resolve-limits.ts';
import { RunEventMapper } from './run-event-mapper.ts';
import { RunReporter } from './run-reporter.ts';

/** What a run needs from the worker's connection. */
export interface RunChannels {
  readonly features: ServerFeatures;
  runChannel(runId: string, token: string): Channel;
  leaveRunChannel(channel: Channel): Promise<void>;
}

export interface RunAttemptOptions {
  run: ClaimedRun;
  lane: string;
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
   * lane's backlog; resolves null when that join failed. Without it the run
   * joins its channel itself.
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

class RunFailure extends Error {
  readonly errorType: string;
  constructor(errorType: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.errorType = errorType;
  }
}

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

  const held = options.joined === undefined ? null : await options.joined;
  const channel = held ?? channels.runChannel(run.id, run.token);
  try {
    try {
      if (held === null) await joinChannel(channel, config.messageTimeoutMs);
    } catch (error) {
      logger.error({ err: error }, 'could not join the run channel; run not executed');
      return { reason: null, durationMs: elapsed() };
    }
    logger.debug('joined run channel');
    const heartbeat = startHeartbeat(channel, channels.features, logger);
    try {
      const reason = await executeAndReport(options, channel, started);
      return { reason, durationMs: elapsed() };
    } finally {
      heartbeat.stop();
    }
  } finally {
    await channels.leaveRunChannel(channel);
  }
}

async function executeAndReport(options: RunAttemptOptions, channel: Channel, claimedAt: number): Promise<ExitReason | null> {
  const { run, config, channels, logger } = options;
  const idempotent = channels.features.capabilities.has(CAPABILITY_IDEMPOTENT_EVENTS);

  let plan: RunPlan | null = null;
  let input: unknown;
  let failure: RunFailure | null = null;
  try {
    plan = await fetchPlan(channel, config.messageTimeoutMs);
    // A plan without a dataclip (OpenFn's lightning-mock sends such plans) starts from an empty state.
    input = plan.dataclip_id === '' ? {} : await fetchDataclip(channel, plan.dataclip_id, config.messageTimeoutMs);
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
    return end.reason;
  }

  let completeSent = false;
  const redactor = new CredentialRedactor();
  const onEvent = (event: EngineEvent): void => {
    try {
      switch (event.type) {
        case 'run-start':
          reporter.send(RUN_START, mapper.runStart(event));
          options.onStarted?.({ claimToDispatchMs: dispatchedAt - claimedAt, dispatchToStartMs: performance.now() - dispatchedAt });
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
    signal: options.signal,
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
  logger.info({ reason: outcome.reason, errorType: outcome.errorType, reported: reporter.completeAccepted }, 'run finished');
  return outcome.reason;
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

/** Joins a run channel; rejects when the server refuses or does not answer in time. */
export function joinChannel(channel: Channel, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let settled = false;
    channel
      .join(timeoutMs)
      .receive('ok', () => {
        if (settled) return;
        settled = true;
        resolve();
      })
      .receive('error', (response?: unknown) => {
        if (settled) return;
        settled = true;
        reject(new PushRejectedError('phx_join', response));
      })
      .receive('timeout', () => {
        if (settled) return;
        settled = true;
        reject(new Error(`run channel join timed out after ${timeoutMs} ms`));
      });
  });
}

async function fetchPlan(channel: Channel, timeoutMs: number): Promise<RunPlan> {
  let reply: unknown;
  try {
    reply = await readWithResend(channel, FETCH_PLAN, {}, timeoutMs);
  } catch (error) {
    throw new RunFailure(ERROR_TYPES.plan, `could not fetch the plan: ${errorMessage(error)}`, { cause: error });
  }
  const reading = readPlanReply(reply);
  if (!reading.ok) throw new RunFailure(ERROR_TYPES.plan, `the plan is malformed: ${reading.problem}`);
  return reading.plan;
}

async function fetchDataclip(channel: Channel, dataclipId: string, timeoutMs: number): Promise<unknown> {
  let reply: unknown;
  try {
    reply = await readWithResend(channel, FETCH_DATACLIP, { id: dataclipId }, timeoutMs);
  } catch (error) {
    throw new RunFailure(ERROR_TYPES.dataclip, `could not fetch dataclip ${dataclipId}: ${errorMessage(error)}`, { cause: error });
  }
  const decoded = decodeDataclip(reply);
  if (!decoded.ok) throw new RunFailure(ERROR_TYPES.dataclip, `dataclip ${dataclipId} ${decoded.problem}`, { cause: decoded.cause });
  return decoded.value;
}

async function fetchCredential(reporter: RunReporter, credentialId: string): Promise<unknown> {
  try {
    // In the run's event queue, behind run:start and any log lines: one event in flight per run.
    return await reporter.request(FETCH_CREDENTIAL, { id: credentialId });
  } catch (error) {
    // The engine maps this to a CredentialError; the message never holds the credential itself.
    throw new RunFailure(ERROR_TYPES.credential, `could not fetch credential ${credentialId}: ${errorMessage(error)}`, { cause: error });
  }
}

interface Heartbeat {
  stop(): void;
}

/** `run:heartbeat` on the run channel, only when the server offers `run_heartbeat`. */
export function startHeartbeat(channel: Channel, features: ServerFeatures, logger: Logger): Heartbeat {
  const intervalMs = features.heartbeatIntervalMs;
  if (!features.capabilities.has(CAPABILITY_RUN_HEARTBEAT) || intervalMs === null) return { stop: () => {} };
  const beat = (): void => {
    // A beat pushed while disconnected would only wait in phoenix's buffer; the next one after the rejoin counts.
    if (channel.state !== 'joined') return;
    pushAndWait(channel, RUN_HEARTBEAT, { timestamp: timestampMicros() }, intervalMs).catch((error: unknown) => {
      logger.debug({ err: error }, 'run heartbeat not acknowledged');
    });
  };
  // The server's lease runs from the claim, so the first beat is due one interval later, not now:
  // a beat at join would only queue ahead of fetch:plan on the critical path to run:start.
  const timer = setInterval(beat, intervalMs);
  return { stop: () => clearInterval(timer) };
}

function emptyPlan(runId: string): RunPlan {
  return { id: runId, dataclip_id: '', starting_node_id: '', triggers: [], jobs: [], edges: [] };
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
