/**
 * `run:<id>`: one attempt of one run, opened with that attempt's run token.
 * One handler per wire event (PROTOCOL.md's table), each validating its
 * payload and answering `{field: [messages]}` on error: the fetches and the
 * heartbeat here, the writing events in `run-progress-events.ts` and
 * `run-log-events.ts`, each inside one transaction (`RunEventContext`).
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
  fetchByIdShape,
  readIssuedRunToken,
  runJoinPayloadShape,
  verifyRunToken,
} from '../protocol/index.ts';
import type { RunPlan, SigningKey } from '../protocol/index.ts';
import type { Channel, ChannelEndReason, ChannelPeer, ChannelReply, JoinResult } from './phoenix-channel.ts';
import { error, ok } from './phoenix-channel.ts';
import { CredentialRedactor } from '../protocol/credential-redactor.ts';
import { isRecord } from './field-errors.ts';
import { hashToken } from './queue-channel.ts';
import { inFlightRun } from './run-event-context.ts';
import type { RunEventContext } from './run-event-context.ts';
import { handleBatchLogs, handleRunLog } from './run-log-events.ts';
import { handleRunComplete, handleRunStart, handleStepComplete, handleStepStart } from './run-progress-events.ts';
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

export class RunChannel implements Channel {
  readonly #deps: RunChannelDeps;
  readonly #peer: ChannelPeer;
  readonly #runId: string;
  readonly #attempt: number;
  readonly #plan: RunPlan;
  readonly #logger: Logger;
  /** Built on the first log line and after each `fetch:credential` (a credential may have been replaced since). */
  #scrubber: CredentialRedactor | undefined;

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
    if (!runJoinPayloadShape.check(payload)) return { ok: false, response: { reason: 'unauthorized' } };
    const { token } = payload;
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
        return this.#mutating(body, handleRunStart);
      case STEP_START:
        return this.#mutating(body, handleStepStart);
      case RUN_LOG:
        return this.#mutating(body, handleRunLog);
      case RUN_BATCH_LOGS:
        return this.#mutating(body, handleBatchLogs);
      case STEP_COMPLETE:
        return this.#mutating(body, handleStepComplete);
      case RUN_COMPLETE:
        return this.#mutating(body, handleRunComplete);
      default:
        return error({ event: [`unknown event ${event}`] });
    }
  }

  /** Wraps a writing handler: payload must be an object; it runs in one transaction; any activity extends a heartbeat lease. */
  async #mutating(payload: unknown, handler: (context: RunEventContext, record: Record<string, unknown>) => Promise<ChannelReply>): Promise<ChannelReply> {
    if (!isRecord(payload)) return error({ payload: ['must be an object'] });
    const reply = await this.#deps.store.transaction((tx) => handler(this.#context(tx), payload));
    await this.#extendLease(null);
    return reply;
  }

  /** What a writing handler sees, every read and write going through `tx`. */
  #context(tx: Store): RunEventContext {
    const runId = this.#runId;
    return {
      runId,
      attempt: this.#attempt,
      plan: this.#plan,
      logger: this.#logger,
      lifecycle: this.#deps.lifecycle,
      store: tx,
      inFlight: () => inFlightRun(tx, runId, this.#attempt),
      replayed: async (key) => {
        const reply = await tx.getEventReply(runId, key);
        return reply === undefined ? undefined : ok(reply);
      },
      remember: async (key, response) => {
        await tx.putEventReply(runId, key, response);
        return ok(response);
      },
      credentialScrubber: () => this.#credentialScrubber(tx),
    };
  }

  async #extendLease(mode: 'heartbeat' | null): Promise<void> {
    const { store, options } = this.#deps;
    if (store.isOpen) await store.extendLease(this.#runId, this.#attempt, Date.now() + options.leaseMs, mode);
  }

  async #fetchDataclip(payload: unknown): Promise<ChannelReply> {
    if (!fetchByIdShape.check(payload)) return error({ id: ["can't be blank"] });
    const { id } = payload;
    const dataclip = await this.#deps.store.getDataclip(id);
    if (!dataclip || dataclip.runId !== this.#runId) return error({ id: ['Dataclip not found'] });
    return { status: 'ok', binary: Buffer.from(dataclip.body, 'utf8') };
  }

  async #fetchCredential(payload: unknown): Promise<ChannelReply> {
    if (!fetchByIdShape.check(payload)) return error({ id: ["can't be blank"] });
    const { id } = payload;
    // Secrets only go to an attempt still in flight: not to a cancelled, finished or superseded one.
    const run = await inFlightRun(this.#deps.store, this.#runId, this.#attempt);
    if (!('id' in run)) return run;
    // Only credentials the plan's jobs name: a run token must not open every secret on the server.
    const referenced = this.#plan.jobs.some((job) => job.credential_id === id);
    const body = referenced ? await this.#deps.store.getCredential(id) : undefined;
    if (body === undefined) return error({ id: ['Credential not found!'] });
    this.#scrubber = undefined;
    return ok(body);
  }

  /**
   * The scrubber for this run's log lines: every credential the plan names,
   * whether or not this attempt fetched it yet (a worker may have fetched it
   * before a reconnect, on an earlier channel).
   */
  async #credentialScrubber(store: Store): Promise<CredentialRedactor> {
    if (!this.#scrubber) {
      const ids = new Set(this.#plan.jobs.map((job) => job.credential_id).filter((id): id is string => typeof id === 'string'));
      const bodies: unknown[] = [];
      for (const id of ids) {
        const body = await store.getCredential(id);
        if (body !== undefined) bodies.push(body);
      }
      this.#scrubber = new CredentialRedactor(bodies);
    }
    return this.#scrubber;
  }

  async #heartbeat(): Promise<ChannelReply> {
    const run = await inFlightRun(this.#deps.store, this.#runId, this.#attempt);
    if (!('id' in run)) return run;
    await this.#extendLease('heartbeat');
    this.#deps.registry.markHeartbeats(this.#peer.workerId, Date.now());
    return ok({});
  }
}
