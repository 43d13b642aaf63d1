/**
 * `worker:queue`: the worker's join (its capacity and lanes), `claim` by one
 * lane's preference chain, and `work-available` pushes (PROTOCOL.md).
 *
 * States: joined → ended. After `terminate()` the worker is out of the
 * registry and gets no more pushes.
 */
import { hash, randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import {
  CAPABILITY_CLAIM_PLANS,
  CAPABILITY_IDEMPOTENT_EVENTS,
  CAPABILITY_MEMORY_CLAIMS,
  CAPABILITY_RUN_CANCEL,
  CAPABILITY_RUN_HEARTBEAT,
  CLAIM,
  MAX_CHAIN_LENGTH,
  MAX_LANE_CAPACITY,
  MAX_LANES,
  MAX_RUN_MEMORY_MB,
  MAX_WORKER_CAPACITY,
  queueNameProblem,
  RUN_CANCEL,
  WILDCARD,
  WORK_AVAILABLE,
  signRunToken,
} from '../protocol/index.ts';
import type { ClaimReply, ClaimedRun, QueueJoinReply, RunCancelPayload, SigningKey } from '../protocol/index.ts';
import { withPlans } from './claim-plans.ts';
import type { Channel, ChannelPeer, ChannelReply, JoinResult } from './phoenix-channel.ts';
import { error, ok } from './phoenix-channel.ts';
import { FieldErrorCollector, isRecord } from './field-errors.ts';
import type { ClaimMemoryFilter, Store } from './store/store.ts';
import type { ServerMetrics } from './server-metrics.ts';
import type { ResolvedServerOptions } from './server-options.ts';
import type { ConnectedWorker, DeclaredLane, WorkerRegistry } from './worker-registry.ts';
import type { WorkNotifier } from './work-notifier.ts';

/** The chain used when a claim names none (PROTOCOL.md). */
export const DEFAULT_CLAIM_CHAIN: readonly string[] = Object.freeze(['manual', WILDCARD]);

/** Largest `demand` one claim may ask for. */
export const MAX_DEMAND = 1000;
/*
 * What a worker may declare (capacity, lanes, chains, queue names) is bounded by protocol/limits.ts,
 * which the worker's configuration checks too, so a bad payload cannot bloat the registry or the claim query.
 */
export const MAX_WORKER_NAME_LENGTH = 255;
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
  privateKey: SigningKey;
  logger: Logger;
}

/** sha256 of a run token: the store keeps this, never the token. */
export function hashToken(token: string): string {
  // The one-shot hash(): no Hash object per call (88 → 51 µs on a cold path, measured).
  return hash('sha256', token, 'hex');
}

/** Checks a preference chain: valid names, `*` only last, no empty list. Returns messages. */
export function validateChain(chain: readonly unknown[]): string[] {
  const problems: string[] = [];
  if (chain.length === 0) problems.push('must name at least one queue');
  // Each name is two SQL parameters in the claim query: keep it far from SQLite's limit.
  if (chain.length > MAX_CHAIN_LENGTH) return [`must name at most ${MAX_CHAIN_LENGTH} queues`];
  chain.forEach((name, index) => {
    if (name === WILDCARD) {
      if (index !== chain.length - 1) problems.push('* may only be last');
    } else {
      const problem = queueNameProblem(name);
      if (problem) problems.push(`queue name ${problem}`);
    }
  });
  return problems;
}

/** A memory size in MB on the wire: a whole number from 0 to MAX_RUN_MEMORY_MB. */
function isMemoryMb(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= MAX_RUN_MEMORY_MB;
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
  /** With memory_claims: chain → the lane's memory in MB; null when the worker's lanes are not bounded by memory. */
  lanesMemoryMb: Record<string, number> | null;
  memoryCeilingMb: number | null;
}

/** The memory fields of a join (memory_claims): optional, but when present they must be well formed. */
function parseJoinMemory(body: Record<string, unknown>, lanes: Record<string, number>, collector: FieldErrorCollector): Pick<ParsedJoin, 'lanesMemoryMb' | 'memoryCeilingMb'> {
  const ceiling = body['memory_ceiling_mb'];
  if (ceiling !== undefined && !isMemoryMb(ceiling)) collector.add('memory_ceiling_mb', `must be an integer from 0 to ${MAX_RUN_MEMORY_MB}`);
  const declared = body['lanes_memory_mb'];
  if (declared === undefined) return { lanesMemoryMb: null, memoryCeilingMb: isMemoryMb(ceiling) ? ceiling : null };
  const lanesMemoryMb: Record<string, number> = {};
  if (!isRecord(declared)) collector.add('lanes_memory_mb', 'must map each lane chain to its memory in MB');
  else {
    for (const [chain, memory] of Object.entries(declared)) {
      if (!(chain in lanes)) collector.add('lanes_memory_mb', `${chain}: is not a lane of queues`);
      else if (!isMemoryMb(memory)) collector.add('lanes_memory_mb', `${chain}: must be an integer from 0 to ${MAX_RUN_MEMORY_MB}`);
      else lanesMemoryMb[chain] = memory;
    }
  }
  return { lanesMemoryMb, memoryCeilingMb: isMemoryMb(ceiling) ? ceiling : null };
}

/** The memory part of a claim: all three fields or none (memory_claims). */
function parseClaimMemory(body: Record<string, unknown>, collector: FieldErrorCollector): ClaimMemoryFilter | undefined {
  const fields = ['max_run_memory_mb', 'lane_memory_mb', 'default_run_memory_mb'] as const;
  const present = fields.filter((field) => body[field] !== undefined);
  if (present.length === 0) return undefined;
  for (const field of fields) {
    if (!isMemoryMb(body[field])) collector.add(field, `must be an integer from 0 to ${MAX_RUN_MEMORY_MB} (memory claims send all three memory fields)`);
  }
  if (!collector.empty) return undefined;
  return { freeMb: body['max_run_memory_mb'] as number, laneMb: body['lane_memory_mb'] as number, defaultRunMb: body['default_run_memory_mb'] as number };
}

/** Validates the join payload; a Lightning-style empty join is accepted. */
/** The Lanes `lanes` list of a join: each lane's chain and slots, two lanes of one chain kept apart. */
function parseLaneList(value: unknown, collector: FieldErrorCollector): DeclaredLane[] {
  if (!Array.isArray(value) || value.length > MAX_LANES) {
    collector.add('lanes', `must be a list of at most ${MAX_LANES} lanes`);
    return [];
  }
  const list: DeclaredLane[] = [];
  value.forEach((lane: unknown, index) => {
    const field = `lanes[${index}]`;
    const queues = isRecord(lane) ? lane['queues'] : undefined;
    const slots = isRecord(lane) ? lane['capacity'] : undefined;
    if (!Array.isArray(queues)) return collector.add(field, 'must have a queues list');
    for (const problem of validateChain(queues)) collector.add(field, problem);
    if (typeof slots !== 'number' || !Number.isInteger(slots) || slots < 1 || slots > MAX_LANE_CAPACITY) {
      return collector.add(field, `capacity must be an integer from 1 to ${MAX_LANE_CAPACITY}`);
    }
    list.push({ chain: queues.join('>'), slots });
  });
  return list;
}

function parseJoin(payload: unknown): ParsedJoin | { errors: Record<string, string[]> } {
  const collector = new FieldErrorCollector();
  const body = isRecord(payload) ? payload : {};
  const capacity = body['capacity'] ?? 0;
  if (typeof capacity !== 'number' || !Number.isInteger(capacity) || capacity < 0 || capacity > MAX_WORKER_CAPACITY) {
    collector.add('capacity', `must be an integer from 0 to ${MAX_WORKER_CAPACITY}`);
  }
  const lanes: Record<string, number> = {};
  const queues = body['queues'] ?? {};
  if (!isRecord(queues)) {
    collector.add('queues', 'must map each lane chain to its slots');
  } else if (Object.keys(queues).length > MAX_LANES) {
    collector.add('queues', `must declare at most ${MAX_LANES} lanes`);
  } else {
    for (const [chain, slots] of Object.entries(queues)) {
      for (const problem of validateChain(chain.split('>'))) collector.add('queues', `${chain}: ${problem}`);
      if (typeof slots !== 'number' || !Number.isInteger(slots) || slots < 1 || slots > MAX_LANE_CAPACITY) {
        collector.add('queues', `${chain}: slots must be an integer from 1 to ${MAX_LANE_CAPACITY}`);
      } else {
        lanes[chain] = slots;
      }
    }
  }
  const laneList =
    body['lanes'] === undefined ? Object.entries(lanes).map(([chain, slots]) => ({ chain, slots })) : parseLaneList(body['lanes'], collector);
  // Unknown or malformed capability lists are ignored, not refused: they only opt in to extensions.
  const declared = body['capabilities'];
  const heartbeats = Array.isArray(declared) && declared.includes(CAPABILITY_RUN_HEARTBEAT);
  const cancels = Array.isArray(declared) && declared.includes(CAPABILITY_RUN_CANCEL);
  const plans = Array.isArray(declared) && declared.includes(CAPABILITY_CLAIM_PLANS);
  const memory = parseJoinMemory(body, lanes, collector);
  if (!collector.empty) return { errors: collector.errors };
  return { capacity: capacity as number, lanes, laneList, heartbeats, cancels, plans, ...memory };
}

export class QueueChannel implements Channel {
  readonly #deps: QueueChannelDeps;
  readonly #peer: ChannelPeer;
  readonly #logger: Logger;
  #ended = false;
  /** When this connection last wrote the worker's `last_seen_at`, and the name it wrote. */
  #touchedAt: number;
  #touchedName: string | null = null;

  private constructor(deps: QueueChannelDeps, peer: ChannelPeer) {
    this.#deps = deps;
    this.#peer = peer;
    this.#logger = deps.logger.child({ workerId: peer.workerId });
    this.#touchedAt = Date.now();
  }

  /** Handles `phx_join` on `worker:queue`. */
  static async join(deps: QueueChannelDeps, payload: unknown, peer: ChannelPeer): Promise<JoinResult> {
    const parsed = parseJoin(payload);
    if ('errors' in parsed) return { ok: false, response: { reason: 'invalid_payload', errors: parsed.errors } };
    const channel = new QueueChannel(deps, peer);
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
      pushWorkAvailable: () => peer.push(WORK_AVAILABLE, {}),
      pushRunCancel: (runId) => peer.push(RUN_CANCEL, { run_id: runId } satisfies RunCancelPayload),
    };
    deps.registry.add(worker);
    await deps.store.upsertWorker({ id: peer.workerId, name: null, capacity: parsed.capacity, queues: parsed.lanes, connectedAt: now, lastSeenAt: now });
    channel.#logger.info({ capacity: parsed.capacity, lanes: parsed.lanes }, 'worker joined queue');
    const reply: QueueJoinReply = {
      capabilities: [CAPABILITY_RUN_HEARTBEAT, CAPABILITY_IDEMPOTENT_EVENTS, CAPABILITY_RUN_CANCEL, CAPABILITY_MEMORY_CLAIMS, CAPABILITY_CLAIM_PLANS],
      heartbeat_interval_ms: deps.options.heartbeatIntervalMs,
      lease_ms: deps.options.leaseMs,
    };
    return { ok: true, channel, response: reply };
  }

  async handleIn(event: string, payload: unknown): Promise<ChannelReply> {
    if (event === CLAIM) return this.#claim(payload);
    return error({ event: [`unknown event ${event}`] });
  }

  terminate(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#deps.registry.remove(this.#peer.connectionId);
    this.#deps.notifier.forget(this.#peer.connectionId);
    const { store } = this.#deps;
    if (store.isOpen) {
      store.markWorkerDisconnected(this.#peer.workerId, Date.now()).catch((err: unknown) => {
        this.#logger.warn({ err }, 'worker disconnect not recorded');
      });
    }
  }

  async #claim(payload: unknown): Promise<ChannelReply> {
    const { store, metrics, options, privateKey } = this.#deps;
    metrics.claimRequests.inc();
    const collector = new FieldErrorCollector();
    const body = isRecord(payload) ? payload : {};
    if (!isRecord(payload)) collector.add('payload', 'must be an object');
    const demand = body['demand'];
    if (typeof demand !== 'number' || !Number.isInteger(demand) || demand < 1 || demand > MAX_DEMAND) {
      collector.add('demand', `must be an integer from 1 to ${MAX_DEMAND}`);
    }
    const workerName = body['worker_name'] ?? null;
    if (workerName !== null && (typeof workerName !== 'string' || workerName.length > MAX_WORKER_NAME_LENGTH)) {
      collector.add('worker_name', `must be a string of at most ${MAX_WORKER_NAME_LENGTH} characters, or null`);
    }
    const rawChain = body['queues'] ?? DEFAULT_CLAIM_CHAIN;
    if (!Array.isArray(rawChain)) collector.add('queues', 'must be a list of queue names');
    else for (const problem of validateChain(rawChain)) collector.add('queues', problem);
    const memory = parseClaimMemory(body, collector);
    if (!collector.empty) return error(collector.errors);
    const chain = rawChain as string[];
    const now = Date.now();
    this.#deps.notifier.claimed(this.#peer.connectionId);
    const registered = this.#deps.registry.get(this.#peer.connectionId);
    if (registered) registered.lastSeenAt = now;
    if (registered && typeof workerName === 'string') registered.name = workerName;
    // One transaction (one commit) for the whole claim: the worker's last-seen mark, the runs, their tokens.
    // A claim that finds nothing and is not due a last-seen mark writes nothing.
    const touch = now - this.#touchedAt >= LAST_SEEN_RESOLUTION_MS || (workerName !== null && workerName !== this.#touchedName);
    const runs = await store.transaction(async (tx) => {
      if (touch) await tx.touchWorker(this.#peer.workerId, workerName as string | null, now);
      const claimed = await tx.claim({
        chain,
        demand: demand as number,
        workerId: this.#peer.workerId,
        workerName: workerName as string | null,
        now,
        graceMs: options.graceMs,
        // A heartbeating worker's run is leased by heartbeat from the claim on: if the claim reply is lost
        // (it came after the worker's claim timeout), no beat ever comes and the run is back within leaseMs.
        heartbeatLeaseMs: registered?.heartbeats === true ? options.leaseMs : null,
        ...(memory === undefined ? {} : { memory }),
      });
      const signed = claimed.map((row) => {
        const token = signRunToken(privateKey, row.id, {
          nowSeconds: Math.floor(now / 1000),
          expiresAtSeconds: Math.ceil((now + row.runTimeoutMs + options.graceMs) / 1000),
          tokenId: randomUUID(),
        });
        return { row, token };
      });
      for (const { row, token } of signed) await tx.setTokenHash(row.id, row.attempt, hashToken(token));
      return signed;
    });
    if (touch) {
      this.#touchedAt = now;
      this.#touchedName = workerName as string | null;
    }
    for (const { row } of runs) {
      const label = metrics.queueLabel(row.queue);
      metrics.runsClaimed.inc(label);
      metrics.claimWait.observe(label, Math.max(0, now - row.enqueuedAt) / 1000);
      this.#logger.info({ runId: row.id, queue: row.queue, attempt: row.attempt }, 'run claimed');
    }
    const handed = runs.map(({ row, token }): ClaimedRun => (row.memoryMb === undefined ? { id: row.id, token } : { id: row.id, token, memory_mb: row.memoryMb }));
    const reply: ClaimReply = { runs: registered?.plans === true && handed.length > 0 ? await withPlans(store, handed) : handed };
    return ok(reply);
  }
}
