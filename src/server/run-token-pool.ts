/**
 * Run identities made in idle time: a fresh run id (a UUID) whose RS256 run
 * token is already signed. A run token names its run (`id`), so it can only be
 * signed before the run exists if the run's id is chosen first: a submission
 * takes its id from this pool (`takeRunId`), and the claim that hands the run
 * out takes the token made with it (`tokenFor`) instead of signing one.
 *
 * Why ahead, and why idle: an RS256 signature costs 0.4-0.55 ms of event
 * loop. Signed in the claim it sits on the path from submit to the job's first
 * line; signed right after the `work-available` push (the previous cache) it
 * is computed exactly while the worker's claims arrive, so the claim waits for
 * it all the same. The pool signs when nothing has been submitted or claimed
 * for `idleMs`, `REFILL_BATCH` tokens per turn of the loop, so the loop is
 * never held for more than about a millisecond.
 *
 * Bounds and rules:
 * - At most `size` identities are held at once, in the pool or taken by a run
 *   that has not been claimed yet; past that a run gets a plain UUID and its
 *   token is signed at its claim, as are all runs when `size` is 0.
 * - A token is signed with `exp` = signing time + `maxAgeMs` + the server's
 *   default run timeout + grace. An identity stays in the pool for half of
 *   `maxAgeMs` (older ones are signed anew, in idle time), so the other half
 *   is left for its run to be claimed; the claim takes the token only within
 *   `maxAgeMs` of its signing and only when its `exp` covers the run's timeout
 *   plus grace from the claim. A run submitted with a longer timeout, or not
 *   yet due (`not_before`), does not take an identity.
 * - One use; only a run's first attempt: a retry is always signed afresh. Each
 *   token has its own `jti`.
 * - The pool is this server's own: on PostgreSQL a run submitted on one
 *   replica and claimed on another is signed at the claim there.
 *
 * Timers are unref'd (they never keep the process alive) and cleared by `stop()`.
 *
 * States: created → running → stopped; created → stopped. Stopped is
 * terminal: nothing is signed or handed out, no timer is left.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { signRunToken } from '../protocol/index.ts';
import type { SigningKey } from '../protocol/index.ts';
import { StateMachine } from '../state-machine.ts';

/** Most identities held at once, pooled or waiting for their run's claim. */
export const RUN_TOKEN_POOL_SIZE = 32;
/** How long a token may wait, from its signing, for the claim that hands its run out. */
export const RUN_TOKEN_MAX_AGE_MS = 60_000;
/** Quiet time (no submission, no claim) before the pool is refilled. */
export const RUN_TOKEN_REFILL_IDLE_MS = 50;
/** Signatures per turn of the event loop while refilling (about 0.5 ms each). */
const REFILL_BATCH = 2;

interface Identity {
  readonly runId: string;
  readonly token: string;
  readonly signedAt: number;
  readonly expiresAtSeconds: number;
}

/** The timer functions the refill uses; default Node's, unref'd. Tests wrap them to see every timer. */
export interface RefillTimers {
  set(callback: () => void, delayMs: number): NodeJS.Timeout;
  clear(timer: NodeJS.Timeout): void;
}

const NODE_TIMERS: RefillTimers = {
  set: (callback, delayMs) => setTimeout(callback, delayMs).unref(),
  clear: (timer) => clearTimeout(timer),
};

/**
 * `pooled`: identities ready for a submission, oldest first; `issued`: run id
 * → the identity a submitted run took, until its claim; `refill`: the next
 * refill and when it is due (null: none set); `activeAt`: the last submission
 * or claim.
 */
type RunTokenPoolState =
  | { readonly kind: 'created' }
  | { readonly kind: 'running'; readonly pooled: Identity[]; readonly issued: Map<string, Identity>; refill: { readonly timer: NodeJS.Timeout; readonly at: number } | null; activeAt: number }
  | { readonly kind: 'stopped' };

type Running = Extract<RunTokenPoolState, { kind: 'running' }>;

/** What a claim needs to sign a run's token: the run and the attempt it hands out. */
export interface TokenRequest {
  id: string;
  attempt: number;
  runTimeoutMs: number;
}

export interface RunTokenPoolOptions {
  privateKey: SigningKey;
  /** The server's default run timeout: pool tokens cover runs up to this. */
  runTimeoutMs: number;
  /** Added to the run timeout for the token's expiry, from the claim. */
  graceMs: number;
  size?: number;
  maxAgeMs?: number;
  idleMs?: number;
  logger: Logger;
  /** The clock; default `Date.now`. */
  now?: () => number;
  timers?: RefillTimers;
  /** A token was signed for the pool (a metric: beside the claims' `ahead` count, it shows how many went unused). */
  onSigned?: () => void;
}

export class RunTokenPool {
  readonly #privateKey: SigningKey;
  readonly #runTimeoutMs: number;
  readonly #graceMs: number;
  readonly #size: number;
  readonly #maxAgeMs: number;
  readonly #idleMs: number;
  readonly #logger: Logger;
  readonly #now: () => number;
  readonly #timers: RefillTimers;
  readonly #onSigned: () => void;
  readonly #state: StateMachine<RunTokenPoolState>;

  constructor(options: RunTokenPoolOptions) {
    this.#privateKey = options.privateKey;
    this.#runTimeoutMs = options.runTimeoutMs;
    this.#graceMs = options.graceMs;
    this.#size = options.size ?? RUN_TOKEN_POOL_SIZE;
    this.#maxAgeMs = options.maxAgeMs ?? RUN_TOKEN_MAX_AGE_MS;
    this.#idleMs = options.idleMs ?? RUN_TOKEN_REFILL_IDLE_MS;
    this.#logger = options.logger;
    this.#now = options.now ?? Date.now;
    this.#timers = options.timers ?? NODE_TIMERS;
    this.#onSigned = options.onSigned ?? (() => {});
    this.#state = new StateMachine<RunTokenPoolState>({
      name: 'run token pool',
      initial: { kind: 'created' },
      transitions: { created: ['running', 'stopped'], running: ['stopped'], stopped: [] },
      logger: options.logger,
    });
  }

  /** Starts filling the pool, once the server has been quiet for `idleMs`. Idempotent. */
  start(): void {
    if (this.#state.kind !== 'created' || this.#size <= 0) return;
    const now = this.#now();
    const running = this.#state.to({ kind: 'running', pooled: [], issued: new Map(), refill: null, activeAt: now });
    this.#schedule(running, now, this.#idleMs);
  }

  /**
   * The id for a run being submitted now: a pooled identity's when the run is
   * due now and its timeout is covered by the pool's tokens, else a fresh UUID
   * (its token is signed at the claim).
   */
  takeRunId(run: { runTimeoutMs: number; dueNow: boolean }): string {
    const running = this.#state.when('running');
    if (running === undefined) return randomUUID();
    const now = this.#now();
    this.#touch(running, now);
    if (!run.dueNow || run.runTimeoutMs > this.#runTimeoutMs) return randomUUID();
    dropOlder(running.pooled, now - this.#poolLifetimeMs);
    const identity = running.pooled.shift();
    if (identity === undefined) return randomUUID();
    running.issued.set(identity.runId, identity);
    return identity.runId;
  }

  /** Forgets the identity a run took when the run was not stored after all. */
  discard(runId: string): void {
    this.#state.when('running')?.issued.delete(runId);
  }

  /**
   * The token for a claim made at `now`: the one made with the run's id when
   * the run is on its first attempt, the token is within its age and its `exp`
   * covers the timeout and grace from now (one use); otherwise one signed now.
   * `presigned` says which.
   */
  tokenFor(run: TokenRequest, now: number): { token: string; presigned: boolean } {
    const expiresAtSeconds = Math.ceil((now + run.runTimeoutMs + this.#graceMs) / 1000);
    const running = this.#state.when('running');
    if (running !== undefined) {
      this.#touch(running, now);
      const identity = running.issued.get(run.id);
      if (identity !== undefined) {
        running.issued.delete(run.id);
        if (run.attempt === 1 && now - identity.signedAt <= this.#maxAgeMs && identity.expiresAtSeconds >= expiresAtSeconds) {
          return { token: identity.token, presigned: true };
        }
      }
    }
    return { token: signRunToken(this.#privateKey, run.id, { nowSeconds: Math.floor(now / 1000), expiresAtSeconds, tokenId: randomUUID() }), presigned: false };
  }

  /** Identities ready for a submission. */
  get pooled(): number {
    return this.#state.when('running')?.pooled.length ?? 0;
  }

  /** Identities taken by runs not claimed yet. */
  get issued(): number {
    return this.#state.when('running')?.issued.size ?? 0;
  }

  stop(): void {
    const running = this.#state.when('running');
    if (running?.refill) this.#timers.clear(running.refill.timer);
    if (this.#state.kind !== 'stopped') this.#state.to({ kind: 'stopped' });
  }

  /** An identity leaves the pool at half its age: the other half is its run's time to be claimed. */
  get #poolLifetimeMs(): number {
    return this.#maxAgeMs / 2;
  }

  /** A submission or a claim: the refill waits for the next quiet spell. */
  #touch(running: Running, now: number): void {
    running.activeAt = now;
    // A refill due sooner stays: when it fires it sees the activity and waits again. A later one
    // (the renewal of a full pool) is brought forward to the end of this quiet spell.
    if (running.refill === null || running.refill.at > now + this.#idleMs) this.#schedule(running, now, this.#idleMs);
  }

  #schedule(running: Running, now: number, delayMs: number): void {
    if (running.refill) this.#timers.clear(running.refill.timer);
    running.refill = { timer: this.#timers.set(() => this.#refill(), delayMs), at: now + delayMs };
  }

  /** Signs a few identities if the server has been quiet long enough, and sets the next refill. */
  #refill(): void {
    const running = this.#state.when('running');
    if (running === undefined) return;
    running.refill = null;
    const now = this.#now();
    const quietMs = now - running.activeAt;
    if (quietMs < this.#idleMs) {
      this.#schedule(running, now, this.#idleMs - quietMs);
      return;
    }
    dropOlder(running.pooled, now - this.#poolLifetimeMs);
    for (const [runId, identity] of running.issued) if (now - identity.signedAt > this.#maxAgeMs) running.issued.delete(runId);
    try {
      for (let i = 0; i < REFILL_BATCH && this.#held(running) < this.#size; i += 1) running.pooled.push(this.#sign(now));
    } catch (error) {
      // Nothing is lost: runs without an identity are signed at their claim. Try again in a while.
      this.#logger.warn({ err: error }, 'run token pool not refilled');
      this.#schedule(running, now, this.#poolLifetimeMs);
      return;
    }
    const delayMs = this.#held(running) < this.#size ? 1 : this.#nextExpiry(running, now);
    if (delayMs !== undefined) this.#schedule(running, now, delayMs);
  }

  #held(running: Running): number {
    return running.pooled.length + running.issued.size;
  }

  /** How long until a full pool has a slot to renew: its oldest pooled identity ages out, or a taken one does. */
  #nextExpiry(running: Running, now: number): number | undefined {
    let at = Number.POSITIVE_INFINITY;
    const oldest = running.pooled[0];
    if (oldest !== undefined) at = oldest.signedAt + this.#poolLifetimeMs;
    for (const identity of running.issued.values()) at = Math.min(at, identity.signedAt + this.#maxAgeMs);
    return Number.isFinite(at) ? Math.max(1, at - now + 1) : undefined;
  }

  #sign(now: number): Identity {
    const runId = randomUUID();
    const expiresAtSeconds = Math.ceil((now + this.#maxAgeMs + this.#runTimeoutMs + this.#graceMs) / 1000);
    const token = signRunToken(this.#privateKey, runId, { nowSeconds: Math.floor(now / 1000), expiresAtSeconds, tokenId: randomUUID() });
    this.#onSigned();
    return { runId, token, signedAt: now, expiresAtSeconds };
  }
}

/** Drops the identities signed before `oldest` (they come first). */
function dropOlder(pooled: Identity[], oldest: number): void {
  let stale = 0;
  while (stale < pooled.length && (pooled[stale]?.signedAt ?? oldest) < oldest) stale += 1;
  if (stale > 0) pooled.splice(0, stale);
}
