/**
 * `run:<id>`: one attempt of one run, opened with that attempt's run token.
 * One handler per wire event (PROTOCOL.md's table), each validating its
 * payload and answering `{field: [messages]}` on error.
 *
 * The run's state machine is `claimed → started → terminal`, enforced in the
 * store's WHERE clauses, so a late event from a superseded attempt, or any
 * event after the run ended, never changes a finished run.
 *
 * Idempotency (`idempotent_events`): each keyed event stores its reply in the
 * same transaction as its rows; a repeat returns that reply and writes
 * nothing. Keys: `run:start:<attempt>`, `step:start:<step_id>`,
 * `step:complete:<step_id>`, `log:<log_id>`, `batch:<log_id>`,
 * `run:complete:<attempt>`.
 *
 * States: joined → ended (left or socket closed; nothing to release).
 */
import type { Logger } from 'pino';
import {
  DATACLIP_TOO_LARGE,
  FETCH_CREDENTIAL,
  FETCH_DATACLIP,
  FETCH_PLAN,
  RUN_BATCH_LOGS,
  RUN_COMPLETE,
  RUN_HEARTBEAT,
  RUN_LOG,
  RUN_START,
  STEP_COMPLETE,
  STEP_START,
  isExitReason,
  isTerminalState,
  parseTimestampMicros,
  readIssuedRunToken,
  runStateForReason,
  verifyRunToken,
} from '../protocol/index.ts';
import type { FieldErrors, RunPlan, SigningKey, WebhookResponse } from '../protocol/index.ts';
import type { Channel, ChannelEndReason, ChannelPeer, ChannelReply, JoinResult } from './phoenix-channel.ts';
import { error, ok } from './phoenix-channel.ts';
import { CredentialRedactor } from '../protocol/credential-redactor.ts';
import { FieldErrorCollector, isNonEmptyString, isOptionalString, isRecord } from './field-errors.ts';
import { hashToken } from './queue-channel.ts';
import type { RunLifecycle } from './run-lifecycle.ts';
import type { RunRecord, Store } from './store/store.ts';
import type { ResolvedServerOptions } from './server-options.ts';
import type { WorkerRegistry } from './worker-registry.ts';

export interface RunChannelDeps {
  store: Store;
  lifecycle: RunLifecycle;
  registry: WorkerRegistry;
  options: ResolvedServerOptions;
  /** Checks tokens for runs that no longer exist; a live run's token is matched by its hash. */
  publicKey: SigningKey;
  logger: Logger;
}

const ALREADY_COMPLETED: FieldErrors = { state: ['already in completed state'] };
const SUPERSEDED: FieldErrors = { run: ['this attempt was superseded'] };

/** Milliseconds from a protocol µs timestamp, or the server clock when it is missing or bad. */
function timeFrom(value: unknown, fallback: number): number {
  const micros = parseTimestampMicros(value);
  return micros === undefined ? fallback : Number(micros / 1000n);
}

interface ParsedLogLine {
  stepId: string | null;
  level: string;
  source: string;
  message: unknown[];
  timestamp: string;
  logId: string | null;
}

function parseLogLine(line: unknown, runId: string, prefix: string, collector: FieldErrorCollector): ParsedLogLine | undefined {
  if (!isRecord(line)) {
    collector.add(prefix || 'payload', 'must be an object');
    return undefined;
  }
  const field = (name: string): string => (prefix ? `${prefix}.${name}` : name);
  const before = Object.keys(collector.errors).length;
  if (line['run_id'] !== undefined && line['run_id'] !== runId) collector.add(field('run_id'), 'does not match this run');
  const message = line['message'];
  if (!Array.isArray(message)) collector.add(field('message'), 'must be a list');
  if (!isNonEmptyString(line['level'])) collector.add(field('level'), "can't be blank");
  if (!isNonEmptyString(line['source'])) collector.add(field('source'), "can't be blank");
  if (!isOptionalString(line['step_id'])) collector.add(field('step_id'), 'must be a string');
  if (line['log_id'] !== undefined && !isNonEmptyString(line['log_id'])) collector.add(field('log_id'), 'must be a non-empty string');
  if (line['timestamp'] !== undefined && parseTimestampMicros(line['timestamp']) === undefined) {
    collector.add(field('timestamp'), 'must be a string of microseconds');
  }
  if (Object.keys(collector.errors).length !== before) return undefined;
  return {
    stepId: (line['step_id'] as string | null | undefined) ?? null,
    level: line['level'] as string,
    source: line['source'] as string,
    message: message as unknown[],
    timestamp: (line['timestamp'] as string | undefined) ?? String(Date.now() * 1000),
    logId: (line['log_id'] as string | undefined) ?? null,
  };
}

export class RunChannel implements Channel {
  readonly #deps: RunChannelDeps;
  readonly #peer: ChannelPeer;
  readonly #runId: string;
  readonly #attempt: number;
  readonly #plan: RunPlan;
  readonly #logger: Logger;
  /** Built on the first log line and after each `fetch:credential` (a credential may have been replaced since). */
  #scrubber: CredentialRedactor | undefined;
  /** The transaction of the writing handler in progress (events of a topic run one at a time). */
  #tx: Store | undefined;

  private constructor(deps: RunChannelDeps, peer: ChannelPeer, run: RunRecord) {
    this.#deps = deps;
    this.#peer = peer;
    this.#runId = run.id;
    this.#attempt = run.attempts;
    this.#plan = run.plan;
    this.#logger = deps.logger.child({ runId: run.id, workerId: peer.workerId, attempt: run.attempts });
  }

  /** Handles `phx_join` on `run:<id>`: the token must be the one handed out for the run's current attempt. */
  static async join(deps: RunChannelDeps, runId: string, payload: unknown, peer: ChannelPeer): Promise<JoinResult> {
    const token = isRecord(payload) ? payload['token'] : undefined;
    if (typeof token !== 'string' || token.length === 0) return { ok: false, response: { reason: 'unauthorized' } };
    if (!deps.store.isOpen) return { ok: false, response: { reason: 'unavailable' } };
    const run = await deps.store.getRun(runId);
    if (!run) {
      // No run to match the token against: a token that verifies (for this id) was ours, for a run since gone.
      const opened = await verifyRunToken(deps.publicKey, token).then((verified) => verified.runId, () => null);
      return { ok: false, response: { reason: opened === runId ? 'not_found' : 'unauthorized' } };
    }
    // The run's current attempt keeps the sha256 of the one token its claim handed out. A token that
    // hashes to it is that token, byte for byte, signed here: its signature needs no second check
    // (an RSA verification on every join: about 0.1 ms of the join when idle, measured), but its
    // claims (expiry, run id) do.
    // Any other token (a forged one, an earlier attempt's, another run's) is refused, as is one
    // presented by another worker.
    if (run.tokenHash === null || run.tokenHash !== hashToken(token) || run.workerId !== peer.workerId) {
      return { ok: false, response: { reason: 'unauthorized' } };
    }
    try {
      if (readIssuedRunToken(token).runId !== runId) return { ok: false, response: { reason: 'unauthorized' } };
    } catch {
      // Expired (or not yet valid).
      return { ok: false, response: { reason: 'unauthorized' } };
    }
    // A (re)join is a sign of life: it restores a lease the reconnect grace had cut (`terminate`).
    await deps.lifecycle.workerBack(run.id, run.attempts);
    return { ok: true, channel: new RunChannel(deps, peer, run), response: {} };
  }

  terminate(reason: ChannelEndReason): void {
    // Nothing held: a run left mid-flight is caught by its lease, cut short when the socket itself
    // closed (a worker that dies is noticed at once; one that reconnects rejoins within the grace).
    if (reason === 'closed') void this.#deps.lifecycle.workerGone(this.#runId, this.#attempt);
  }

  /** The store, or the open transaction's handle while a writing handler runs. */
  get #store(): Store {
    return this.#tx ?? this.#deps.store;
  }

  async handleIn(event: string, payload: unknown): Promise<ChannelReply> {
    const { store } = this.#deps;
    if (!store.isOpen) return error({ server: ['shutting down'] });
    const body = payload ?? {};
    switch (event) {
      case FETCH_PLAN:
        return ok(this.#plan);
      case FETCH_DATACLIP:
        return this.#fetchDataclip(body);
      case FETCH_CREDENTIAL:
        return this.#fetchCredential(body);
      case RUN_HEARTBEAT:
        return this.#heartbeat();
      case RUN_START:
        return this.#mutating(body, (record) => this.#runStart(record));
      case STEP_START:
        return this.#mutating(body, (record) => this.#stepStart(record));
      case RUN_LOG:
        return this.#mutating(body, (record) => this.#runLog(record));
      case RUN_BATCH_LOGS:
        return this.#mutating(body, (record) => this.#batchLogs(record));
      case STEP_COMPLETE:
        return this.#mutating(body, (record) => this.#stepComplete(record));
      case RUN_COMPLETE:
        return this.#mutating(body, (record) => this.#runComplete(record));
      default:
        return error({ event: [`unknown event ${event}`] });
    }
  }

  /** Current run, or an error reply when this attempt may not write any more. */
  async #inFlight(): Promise<RunRecord | ChannelReply> {
    const run = await this.#store.getRun(this.#runId);
    if (!run) return error({ run: ['not found'] });
    if (run.attempts !== this.#attempt) return error(SUPERSEDED);
    if (isTerminalState(run.state)) return error(ALREADY_COMPLETED);
    if (run.state === 'available') return error(SUPERSEDED);
    return run;
  }

  /** Wraps a writing handler: payload must be an object; any activity extends a heartbeat lease. */
  async #mutating(payload: unknown, handler: (record: Record<string, unknown>) => Promise<ChannelReply>): Promise<ChannelReply> {
    if (!isRecord(payload)) return error({ payload: ['must be an object'] });
    const reply = await this.#deps.store.transaction(async (tx) => {
      this.#tx = tx;
      try {
        return await handler(payload);
      } finally {
        this.#tx = undefined;
      }
    });
    await this.#extendLease(null);
    return reply;
  }

  async #extendLease(mode: 'heartbeat' | null): Promise<void> {
    const { store, options } = this.#deps;
    if (store.isOpen) await store.extendLease(this.#runId, this.#attempt, Date.now() + options.leaseMs, mode);
  }

  async #replayed(key: string): Promise<ChannelReply | undefined> {
    const reply = await this.#store.getEventReply(this.#runId, key);
    return reply === undefined ? undefined : ok(reply);
  }

  async #remember(key: string, response: unknown): Promise<ChannelReply> {
    await this.#store.putEventReply(this.#runId, key, response);
    return ok(response);
  }

  async #fetchDataclip(payload: unknown): Promise<ChannelReply> {
    const id = isRecord(payload) ? payload['id'] : undefined;
    if (!isNonEmptyString(id)) return error({ id: ["can't be blank"] });
    const dataclip = await this.#store.getDataclip(id);
    if (!dataclip || dataclip.runId !== this.#runId) return error({ id: ['Dataclip not found'] });
    return { status: 'ok', binary: Buffer.from(dataclip.body, 'utf8') };
  }

  async #fetchCredential(payload: unknown): Promise<ChannelReply> {
    const id = isRecord(payload) ? payload['id'] : undefined;
    if (!isNonEmptyString(id)) return error({ id: ["can't be blank"] });
    // Secrets only go to an attempt still in flight: not to a cancelled, finished or superseded one.
    const run = await this.#inFlight();
    if (!('id' in run)) return run;
    // Only credentials the plan's jobs name: a run token must not open every secret on the server.
    const referenced = this.#plan.jobs.some((job) => job.credential_id === id);
    const body = referenced ? await this.#store.getCredential(id) : undefined;
    if (body === undefined) return error({ id: ['Credential not found!'] });
    this.#scrubber = undefined;
    return ok(body);
  }

  /**
   * The scrubber for this run's log lines: every credential the plan names,
   * whether or not this attempt fetched it yet (a worker may have fetched it
   * before a reconnect, on an earlier channel).
   */
  async #credentialScrubber(): Promise<CredentialRedactor> {
    if (!this.#scrubber) {
      const ids = new Set(this.#plan.jobs.map((job) => job.credential_id).filter((id): id is string => typeof id === 'string'));
      const bodies: unknown[] = [];
      for (const id of ids) {
        const body = await this.#store.getCredential(id);
        if (body !== undefined) bodies.push(body);
      }
      this.#scrubber = new CredentialRedactor(bodies);
    }
    return this.#scrubber;
  }

  async #heartbeat(): Promise<ChannelReply> {
    const run = await this.#inFlight();
    if (!('id' in run)) return run;
    await this.#extendLease('heartbeat');
    this.#deps.registry.markHeartbeats(this.#peer.workerId, Date.now());
    return ok({});
  }

  async #runStart(payload: Record<string, unknown>): Promise<ChannelReply> {
    const key = `run:start:${this.#attempt}`;
    const replay = await this.#replayed(key);
    if (replay) return replay;
    const collector = new FieldErrorCollector();
    if (payload['versions'] !== undefined && !isRecord(payload['versions'])) collector.add('versions', 'must be an object');
    if (!collector.empty) return error(collector.errors);
    const run = await this.#inFlight();
    if (!('id' in run)) return run;
    if (run.state !== 'claimed') return error({ state: ['run already started'] });
    const now = timeFrom(payload['timestamp'], Date.now());
    const versions = (payload['versions'] as Record<string, string> | undefined) ?? null;
    if (!await this.#store.markStarted(this.#runId, this.#attempt, now, versions)) return error(SUPERSEDED);
    this.#logger.info('run started');
    return await this.#remember(key, {});
  }

  async #stepStart(payload: Record<string, unknown>): Promise<ChannelReply> {
    const stepId = payload['step_id'];
    if (!isNonEmptyString(stepId)) return error({ step_id: ["can't be blank"] });
    const key = `step:start:${stepId}`;
    const replay = await this.#replayed(key);
    if (replay) return replay;
    const collector = new FieldErrorCollector();
    const jobId = payload['job_id'];
    if (!isNonEmptyString(jobId)) collector.add('job_id', "can't be blank");
    else if (!this.#plan.jobs.some((job) => job.id === jobId)) collector.add('job_id', 'is not a job of this plan');
    const input = payload['input_dataclip_id'];
    if (!isOptionalString(input)) collector.add('input_dataclip_id', 'must be a string');
    if (!collector.empty) return error(collector.errors);
    const run = await this.#inFlight();
    if (!('id' in run)) return run;
    if (run.state !== 'started') return error({ state: ['run has not started'] });
    const existing = await this.#store.getStep(stepId);
    if (existing) return error({ step_id: ['has already been taken'] });
    await this.#store.insertStep({
      id: stepId,
      runId: this.#runId,
      attempt: this.#attempt,
      jobId: jobId as string,
      inputDataclipId: (input as string | null | undefined) ?? null,
      startedAt: timeFrom(payload['timestamp'], Date.now()),
    });
    return await this.#remember(key, { step_id: stepId });
  }

  async #runLog(payload: Record<string, unknown>): Promise<ChannelReply> {
    const collector = new FieldErrorCollector();
    const line = parseLogLine(payload, this.#runId, '', collector);
    if (!line) return error(collector.errors);
    const key = line.logId === null ? null : `log:${line.logId}`;
    if (key) {
      const replay = await this.#replayed(key);
      if (replay) return replay;
    }
    const run = await this.#inFlight();
    if (!('id' in run)) return run;
    if (line.stepId !== null && (await this.#store.getStep(line.stepId))?.runId !== this.#runId) {
      return error({ step_id: ['is not a step of this run'] });
    }
    const id = await this.#store.insertLog({ runId: this.#runId, attempt: this.#attempt, ...line, message: (await this.#credentialScrubber()).redact(line.message) });
    const reply = { log_line_id: id };
    return key ? await this.#remember(key, reply) : ok(reply);
  }

  async #batchLogs(payload: Record<string, unknown>): Promise<ChannelReply> {
    const batchId = payload['log_id'];
    if (batchId !== undefined && !isNonEmptyString(batchId)) return error({ log_id: ['must be a non-empty string'] });
    const key = typeof batchId === 'string' ? `batch:${batchId}` : null;
    if (key) {
      const replay = await this.#replayed(key);
      if (replay) return replay;
    }
    const collector = new FieldErrorCollector();
    if (payload['run_id'] !== undefined && payload['run_id'] !== this.#runId) collector.add('run_id', 'does not match this run');
    const logs = payload['logs'];
    if (!Array.isArray(logs)) return error({ logs: ['must be a list'] });
    const lines: ParsedLogLine[] = [];
    logs.forEach((raw, index) => {
      const line = parseLogLine(raw, this.#runId, `logs[${index}]`, collector);
      if (line) lines.push(line);
    });
    if (!collector.empty) return error(collector.errors);
    const run = await this.#inFlight();
    if (!('id' in run)) return run;
    for (const line of lines) {
      const lineKey = line.logId === null ? null : `log:${line.logId}`;
      if (lineKey && (await this.#store.getEventReply(this.#runId, lineKey)) !== undefined) continue;
      const id = await this.#store.insertLog({ runId: this.#runId, attempt: this.#attempt, ...line, message: (await this.#credentialScrubber()).redact(line.message) });
      if (lineKey) await this.#store.putEventReply(this.#runId, lineKey, { log_line_id: id });
    }
    return key ? await this.#remember(key, {}) : ok({});
  }

  async #stepComplete(payload: Record<string, unknown>): Promise<ChannelReply> {
    const stepId = payload['step_id'];
    if (!isNonEmptyString(stepId)) return error({ step_id: ["can't be blank"] });
    const key = `step:complete:${stepId}`;
    const replay = await this.#replayed(key);
    if (replay) return replay;
    const collector = new FieldErrorCollector();
    const step = await this.#store.getStep(stepId);
    if (!step || step.runId !== this.#runId || step.attempt !== this.#attempt) collector.add('step_id', 'is not a started step of this run');
    const jobId = payload['job_id'];
    if (!isNonEmptyString(jobId)) collector.add('job_id', "can't be blank");
    else if (step && step.jobId !== jobId) collector.add('job_id', 'does not match the step');
    const reason = payload['reason'];
    if (!isExitReason(reason)) collector.add('reason', 'is invalid');
    if (!isOptionalString(payload['error_type'])) collector.add('error_type', 'must be a string or null');
    if (!isOptionalString(payload['error_message'])) collector.add('error_message', 'must be a string or null');
    const output = payload['output_dataclip'];
    const outputId = payload['output_dataclip_id'];
    const outputError = payload['output_dataclip_error'];
    if (output !== undefined && output !== null) {
      if (typeof output !== 'string') collector.add('output_dataclip', 'must be a JSON string');
      else {
        try {
          JSON.parse(output);
        } catch {
          collector.add('output_dataclip', 'is not valid JSON');
        }
      }
      if (!isNonEmptyString(outputId)) collector.add('output_dataclip_id', "can't be blank when output_dataclip is sent");
    }
    if (!isOptionalString(outputId)) collector.add('output_dataclip_id', 'must be a string');
    if (outputError !== undefined && outputError !== null && outputError !== DATACLIP_TOO_LARGE) {
      if (typeof outputError !== 'string') collector.add('output_dataclip_error', 'must be a string');
    }
    const mem = payload['mem'];
    if (mem !== undefined && (!isRecord(mem) || typeof mem['job'] !== 'number' || typeof mem['system'] !== 'number')) {
      collector.add('mem', 'must be {job, system} numbers');
    }
    const duration = payload['duration'];
    if (duration !== undefined && (typeof duration !== 'number' || duration < 0)) collector.add('duration', 'must be a non-negative number');
    const threadId = payload['thread_id'];
    if (threadId !== undefined && threadId !== null && typeof threadId !== 'number') collector.add('thread_id', 'must be a number');
    const webhook = payload['webhook_response'];
    if (webhook !== undefined && webhook !== null) {
      if (!isRecord(webhook)) collector.add('webhook_response', 'must be an object');
      else if (webhook['status'] !== undefined && (typeof webhook['status'] !== 'number' || !Number.isInteger(webhook['status']) || webhook['status'] < 100 || webhook['status'] > 599)) {
        collector.add('webhook_response.status', 'must be an HTTP status');
      }
    }
    if (!collector.empty) return error(collector.errors);
    const run = await this.#inFlight();
    if (!('id' in run)) return run;
    const now = Date.now();
    if (typeof output === 'string' && typeof outputId === 'string') {
      await this.#store.insertDataclip(outputId, this.#runId, 'step_result', output, now);
    }
    await this.#store.completeStep({
      id: stepId,
      outputDataclipId: typeof outputId === 'string' ? outputId : null,
      outputDataclipError: typeof outputError === 'string' ? outputError : null,
      reason: reason as string,
      errorType: (payload['error_type'] as string | null | undefined) ?? null,
      errorMessage: (payload['error_message'] as string | null | undefined) ?? null,
      mem: mem ?? null,
      durationMs: typeof duration === 'number' ? duration : null,
      threadId: typeof threadId === 'number' ? threadId : null,
      finishedAt: timeFrom(payload['timestamp'], now),
    });
    if (isRecord(webhook)) await this.#store.setWebhookResponseOnce(this.#runId, webhook as WebhookResponse);
    return await this.#remember(key, { step_id: stepId });
  }

  async #runComplete(payload: Record<string, unknown>): Promise<ChannelReply> {
    const key = `run:complete:${this.#attempt}`;
    const replay = await this.#replayed(key);
    if (replay) return replay;
    const collector = new FieldErrorCollector();
    const reason = payload['reason'];
    if (!isExitReason(reason)) collector.add('reason', 'is invalid');
    if (!isOptionalString(payload['error_type'])) collector.add('error_type', 'must be a string or null');
    if (!isOptionalString(payload['error_message'])) collector.add('error_message', 'must be a string or null');
    if (!isOptionalString(payload['final_dataclip_id'])) collector.add('final_dataclip_id', 'must be a string');
    if (!collector.empty) return error(collector.errors);
    const current = await this.#store.getRun(this.#runId);
    // The worker ending a run that was cancelled here (run_cancel) confirms what is stored: not an error.
    if (reason === 'cancel' && current?.state === 'cancelled' && current.attempts === this.#attempt) return ok({});
    const run = await this.#inFlight();
    if (!('id' in run)) return run;
    const exitReason = reason as Parameters<typeof runStateForReason>[0];
    const result = await this.#deps.lifecycle.finish(
      run,
      {
        state: runStateForReason(exitReason),
        reason: exitReason,
        errorType: (payload['error_type'] as string | null | undefined) ?? null,
        errorMessage: (payload['error_message'] as string | null | undefined) ?? null,
        finalDataclipId: (payload['final_dataclip_id'] as string | null | undefined) ?? null,
        finalState: payload['final_state'],
      },
      timeFrom(payload['timestamp'], Date.now()),
      this.#store,
    );
    if (result === 'stale') return error(ALREADY_COMPLETED);
    return await this.#remember(key, {});
  }
}
