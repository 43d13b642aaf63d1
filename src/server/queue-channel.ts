/**
 * `worker:queue`: the worker's join (its capacity and lanes), `claim` by one
 * lane's preference chain, and `work-available` pushes (PROTOCOL.md). With
 * `held_claims`, a claim that finds nothing may wait here for work
 * (held-claims.ts), and `claim:release` answers those at once.
 *
 * States, kept in a `StateMachine`: joined → ended. After `terminate()` the
 * worker is out of the registry and gets no more pushes. What this
 * connection last wrote as the worker's `last_seen_at` belongs to `joined`.
 */
import { hash } from 'node:crypto';
import type { Logger } from 'pino';
import {
  CAPABILITY_CLAIM_PLANS,
  CAPABILITY_HELD_CLAIMS,
  CAPABILITY_RUN_CANCEL,
  CAPABILITY_RUN_HEARTBEAT,
  CAPABILITY_WORK_QUEUES,
  CLAIM,
  CLAIM_RELEASE,
  LANES_CAPABILITIES,
  DEFAULT_CLAIM_CHAIN,
  RUN_CANCEL,
  WORK_AVAILABLE,
  joinPayloadProblems,
  queueJoinPayloadShape,
  readClaimPayload,
} from '../protocol/index.ts';
import type { ClaimReply, ClaimedRun, QueueJoinReply, ReceivedJoinPayload, RunCancelPayload, WorkAvailablePayload } from '../protocol/index.ts';
import { StateMachine } from '../state-machine.ts';
import { withPlans } from './claim-plans.ts';
import { HeldClaims } from './held-claims.ts';
import type { ClaimRetry, ClaimTry } from './held-claims.ts';
import type { HandOffContext } from './run-hand-off.ts';
import type { Channel, ChannelPeer, ChannelReply, DeferredReply, JoinResult } from './phoenix-channel.ts';
import { error, ok } from './phoenix-channel.ts';
import type { RunTokenPool } from './run-token-pool.ts';
import type { ClaimMemoryFilter, Store } from './store/store.ts';
import type { ServerMetrics } from './server-metrics.ts';
import type { ResolvedServerOptions } from './server-options.ts';
import type { ConnectedWorker, DeclaredLane, WorkerRegistry } from './worker-registry.ts';
import type { WorkNotifier } from './work-notifier.ts';

/*
 * What a worker may declare (capacity, lanes, chains, queue names) is bounded by the join and claim
 * schemas of protocol/ and protocol/limits.ts, which the worker's configuration checks too, so a bad
 * payload cannot bloat the registry or the claim query.
 */
/**
 * A worker's `last_seen_at` is written by its claims at most this often: an
 * idle lane claims every few seconds, a busy worker many times a second, and
 * a write per claim would put a commit on every claim's reply, empty ones too.
 */
export const LAST_SEEN_RESOLUTION_MS = 1000;

export interface QueueChannelDeps {
  store: Store;
  registry: WorkerRegistry;
  /** Told of every claim and disconnect, so it knows when a push would be news. */
  notifier: Pick<WorkNotifier, 'claimed' | 'forget'>;
  metrics: ServerMetrics;
  options: ResolvedServerOptions;
  /** Signs the tokens of claimed runs, or hands out those signed ahead. */
  tokens: Pick<RunTokenPool, 'tokenFor'>;
  logger: Logger;
}

/** sha256 of a run token: the store keeps this, never the token. */
export function hashToken(token: string): string {
  // The one-shot hash(): no Hash object per call (88 → 51 µs on a cold path, measured).
  return hash('sha256', token, 'hex');
}

interface ParsedJoin {
  capacity: number;
  /** Chain → slots, as `queues` says (lanes of one chain summed). */
  lanes: Record<string, number>;
  /** Every lane on its own: from the `lanes` list when the worker sent one, else from `queues`. */
  laneList: DeclaredLane[];
  heartbeats: boolean;
  cancels: boolean;
  /** The worker declared `claim_plans`: its claim replies carry plans and inputs. */
  plans: boolean;
  /** The worker declared `work_queues`: its `work-available` pushes name their queues. */
  namesQueues: boolean;
  /** The worker declared `held_claims`: a claim of its with `hold_ms` may wait for work. */
  holdsClaims: boolean;
  /** With memory_claims: chain → the lane's memory in MB; null when the worker's lanes are not bounded by memory. */
  lanesMemoryMb: Record<string, number> | null;
  memoryCeilingMb: number | null;
}

/** Reads a join payload checked by `joinPayloadProblems`; a Lightning-style empty join is accepted. */
function parseJoin(payload: unknown): ParsedJoin | { errors: Record<string, string[]> } {
  const errors = joinPayloadProblems(payload);
  if (Object.keys(errors).length > 0 || !queueJoinPayloadShape.check(payload ?? {})) return { errors };
  const body: ReceivedJoinPayload = queueJoinPayloadShape.check(payload) ? payload : {};
  const lanes = body.queues ?? {};
  const laneList = body.lanes === undefined ? Object.entries(lanes).map(([chain, slots]) => ({ chain, slots })) : body.lanes.map((lane) => ({ chain: lane.queues.join('>'), slots: lane.capacity }));
  const declared = body.capabilities;
  return {
    capacity: body.capacity ?? 0,
    lanes,
    laneList,
    heartbeats: Array.isArray(declared) && declared.includes(CAPABILITY_RUN_HEARTBEAT),
    cancels: Array.isArray(declared) && declared.includes(CAPABILITY_RUN_CANCEL),
    plans: Array.isArray(declared) && declared.includes(CAPABILITY_CLAIM_PLANS),
    namesQueues: Array.isArray(declared) && declared.includes(CAPABILITY_WORK_QUEUES),
    holdsClaims: Array.isArray(declared) && declared.includes(CAPABILITY_HELD_CLAIMS),
    lanesMemoryMb: body.lanes_memory_mb ?? null,
    memoryCeilingMb: body.memory_ceiling_mb ?? null,
  };
}

/** A claim as read from its payload: what each try of it (held-claims.ts) asks the store. */
interface ClaimRequest {
  chain: readonly string[];
  demand: number;
  workerName: string | null;
  memory: ClaimMemoryFilter | undefined;
}

/** `touchedAt`, `touchedName`: when this connection last wrote the worker's `last_seen_at`, and the name it wrote. */
type QueueChannelState = { readonly kind: 'joined'; touchedAt: number; touchedName: string | null } | { readonly kind: 'ended' };

export class QueueChannel implements Channel {
  readonly #deps: QueueChannelDeps;
  readonly #peer: ChannelPeer;
  readonly #logger: Logger;
  readonly #state: StateMachine<QueueChannelState>;
  /** Claims waiting for work (`held_claims`); used only when the worker declared it. */
  readonly #held: HeldClaims<HandOffContext>;
  #holdsClaims = false;

  private constructor(deps: QueueChannelDeps, peer: ChannelPeer) {
    this.#deps = deps;
    this.#peer = peer;
    this.#logger = deps.logger.child({ workerId: peer.workerId });
    this.#state = new StateMachine<QueueChannelState>({
      name: 'worker:queue channel',
      initial: { kind: 'joined', touchedAt: Date.now(), touchedName: null },
      transitions: { joined: ['ended'], ended: [] },
      logger: this.#logger,
    });
    this.#held = new HeldClaims<HandOffContext>(this.#logger);
  }

  /** Handles `phx_join` on `worker:queue`. */
  static async join(deps: QueueChannelDeps, payload: unknown, peer: ChannelPeer): Promise<JoinResult> {
    const parsed = parseJoin(payload);
    if ('errors' in parsed) return { ok: false, response: { reason: 'invalid_payload', errors: parsed.errors } };
    const channel = new QueueChannel(deps, peer);
    channel.#holdsClaims = parsed.holdsClaims && deps.options.holdClaims;
    const now = Date.now();
    const worker: ConnectedWorker = {
      connectionId: peer.connectionId,
      workerId: peer.workerId,
      name: null,
      capacity: parsed.capacity,
      lanes: parsed.lanes,
      laneList: parsed.laneList,
      connectedAt: now,
      lastSeenAt: now,
      heartbeats: parsed.heartbeats,
      cancels: parsed.cancels,
      plans: parsed.plans,
      lanesMemoryMb: parsed.lanesMemoryMb,
      memoryCeilingMb: parsed.memoryCeilingMb,
      pushWorkAvailable: (queues) => peer.push(WORK_AVAILABLE, (parsed.namesQueues && queues !== null ? { queues: [...queues] } : {}) satisfies WorkAvailablePayload),
      pushRunCancel: (runId) => peer.push(RUN_CANCEL, { run_id: runId } satisfies RunCancelPayload),
      serveHeldClaims: (queue) => channel.#held.serve(queue),
      heldClaimsFor: (queue) => channel.#held.count(queue),
      handOffHeld: (queue, context) => channel.#held.handOff(queue, context),
    };
    deps.registry.add(worker);
    await deps.store.upsertWorker({ id: peer.workerId, name: null, capacity: parsed.capacity, queues: parsed.lanes, connectedAt: now, lastSeenAt: now });
    channel.#logger.info({ capacity: parsed.capacity, lanes: parsed.lanes }, 'worker joined queue');
    const reply: QueueJoinReply = {
      capabilities: LANES_CAPABILITIES.filter((capability) => deps.options.holdClaims || capability !== CAPABILITY_HELD_CLAIMS),
      heartbeat_interval_ms: deps.options.heartbeatIntervalMs,
      lease_ms: deps.options.leaseMs,
    };
    return { ok: true, channel, response: reply };
  }

  async handleIn(event: string, payload: unknown): Promise<ChannelReply | DeferredReply> {
    if (event === CLAIM) return this.#claim(payload);
    if (event === CLAIM_RELEASE && this.#holdsClaims) {
      this.#held.releaseAll();
      return ok();
    }
    return error({ event: [`unknown event ${event}`] });
  }

  terminate(): void {
    if (this.#state.kind === 'ended') return;
    this.#state.to({ kind: 'ended' });
    this.#held.close();
    this.#deps.registry.remove(this.#peer.connectionId);
    this.#deps.notifier.forget(this.#peer.connectionId);
    const { store } = this.#deps;
    if (store.isOpen) {
      store.markWorkerDisconnected(this.#peer.workerId, Date.now()).catch((err: unknown) => {
        this.#logger.warn({ err }, 'worker disconnect not recorded');
      });
    }
  }

  async #claim(payload: unknown): Promise<ChannelReply | DeferredReply> {
    this.#deps.metrics.claimRequests.inc();
    const read = readClaimPayload(payload);
    if (!read.ok) return error(read.errors);
    const { claim } = read;
    const chain = claim.queues ?? DEFAULT_CLAIM_CHAIN;
    const workerName = claim.worker_name ?? null;
    const { max_run_memory_mb: freeMb, lane_memory_mb: laneMb, default_run_memory_mb: defaultRunMb } = claim;
    const memory: ClaimMemoryFilter | undefined = freeMb === undefined || laneMb === undefined || defaultRunMb === undefined ? undefined : { freeMb, laneMb, defaultRunMb };
    const request: ClaimRequest = { chain, demand: claim.demand, workerName, memory };
    const holdMs = claim.hold_ms ?? 0;
    if (holdMs <= 0 || !this.#holdsClaims || this.#state.kind !== 'joined') return ok((await this.#claimNow(request)).reply);
    // A claim that may wait is held from before its first try: work queued during that try makes it try
    // again (held-claims.ts). Found nothing: it waits for work this chain may take, tried again as it is queued.
    // Inside a submission's transaction (a hand-off) a failure is passed on: the submission rolls back and answers with it.
    const retry: ClaimRetry<HandOffContext> = (within) =>
      within !== undefined
        ? this.#claimNow(request, within)
        : this.#claimNow(request).catch((err: unknown) => {
            this.#logger.warn({ err }, 'held claim not tried');
            return { reply: { runs: [] }, drained: true };
          });
    const held = await this.#held.claim(chain, holdMs, () => this.#claimNow(request), retry);
    return 'now' in held ? ok(held.now) : { later: held.later.then((reply) => ok(reply)) };
  }

  /**
   * One claim transaction and its reply; with `within`, inside a
   * submission's transaction (run-hand-off.ts): the claim's metrics and logs
   * wait for its commit (`ClaimTry.claimed`), and the reply carries the
   * submitted run's plan and input without reading them back.
   */
  async #claimNow(request: ClaimRequest, within?: HandOffContext): Promise<ClaimTry> {
    const { metrics, options, tokens } = this.#deps;
    const store = within?.tx ?? this.#deps.store;
    const { chain, workerName, memory } = request;
    const now = Date.now();
    this.#deps.notifier.claimed(this.#peer.connectionId);
    const registered = this.#deps.registry.get(this.#peer.connectionId);
    if (registered) registered.lastSeenAt = now;
    if (registered && typeof workerName === 'string') registered.name = workerName;
    // One transaction (one commit) for the whole claim: the worker's last-seen mark, the runs, their tokens.
    // A claim that finds nothing and is not due a last-seen mark writes nothing.
    const joined = this.#state.when('joined');
    // A claim that arrives as the socket closes still claims (the worker reads the reply if it can); it marks nothing.
    const touch = joined !== undefined && (now - joined.touchedAt >= LAST_SEEN_RESOLUTION_MS || (workerName !== null && workerName !== joined.touchedName));
    const runs = await store.transaction(async (tx) => {
      if (touch) await tx.touchWorker(this.#peer.workerId, workerName, now);
      const claimed = await tx.claim({
        chain,
        demand: request.demand,
        workerId: this.#peer.workerId,
        workerName: workerName,
        now,
        graceMs: options.graceMs,
        // A heartbeating worker's run is leased by heartbeat from the claim on: if the claim reply is lost
        // (it came after the worker's claim timeout), no beat ever comes and the run is back within leaseMs.
        heartbeatLeaseMs: registered?.heartbeats === true ? options.leaseMs : null,
        ...(memory === undefined ? {} : { memory }),
        ...(within === undefined ? {} : { justStored: within.record.id }),
      });
      // A run submitted here usually took an id whose token was signed in idle time (run-token-pool.ts).
      const signed = claimed.map((row) => ({ row, ...tokens.tokenFor(row, now) }));
      for (const { row, token } of signed) await tx.setTokenHash(row.id, row.attempt, hashToken(token));
      return signed;
    });
    const claimed = (): void => {
      if (touch) {
        joined.touchedAt = now;
        joined.touchedName = workerName;
      }
      if (runs.length === 0) return;
      // Counted and logged once the reply is written (it goes out in this turn of the loop): not on its way.
      setImmediate(() => {
        for (const { row, presigned } of runs) {
          metrics.runTokens.inc({ signed: presigned ? 'ahead' : 'at_claim' });
          const label = metrics.queueLabel(row.queue);
          metrics.runsClaimed.inc(label);
          metrics.claimWait.observe(label, Math.max(0, now - row.enqueuedAt) / 1000);
          this.#logger.info({ runId: row.id, queue: row.queue, attempt: row.attempt }, 'run claimed');
        }
      });
    };
    if (within === undefined) claimed();
    const handed = runs.map(({ row, token }): ClaimedRun => (row.memoryMb === undefined ? { id: row.id, token } : { id: row.id, token, memory_mb: row.memoryMb }));
    const reply: ClaimReply = { runs: registered?.plans === true && handed.length > 0 ? await withPlans(store, handed, within) : handed };
    const drained = handed.length < request.demand;
    return within === undefined ? { reply, drained } : { reply, drained, claimed };
  }
}
