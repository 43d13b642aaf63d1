/**
 * Run tokens signed before the claim that hands the run out. Signing an RS256
 * token costs about half a millisecond, and on an idle server it sat inside
 * the claim transaction, on the path from submit to the job's first line. A
 * run that was just submitted is signed once the `work-available` push for it
 * has gone (`presignSoon`: on the next turn of the event loop, so the push is
 * not held back), while the worker is still waking up (0.4-0.6 ms from the
 * push to its claim, against 0.4-0.55 ms for the signature); the claim then
 * takes that token (`tokenFor`) instead of signing.
 *
 * The signature is computed on the event loop, not on libuv's thread pool: in
 * a trial of bench/presigned-claim.ts with `crypto.sign`'s callback form, on
 * the two-core development machine, the pool's signature was ready for 13 of
 * 400 claims, and the claims were slower for the contention.
 *
 * Bounded on both sides: at most `maxEntries` tokens are held (a burst of
 * submissions is not signed wholesale: past the bound a run is signed at its
 * claim, as before) and each is usable for `maxAgeMs` from its signing. A
 * token is taken once. Only a run's first attempt takes one: a retry is always
 * signed afresh. The cache is this server's own; on PostgreSQL a run claimed
 * through another server is signed there, at the claim.
 *
 * Because the token may wait up to `maxAgeMs` before its claim, it is signed
 * with that much more validity: `exp` still covers the run's timeout plus the
 * grace counted from the claim (`tokenFor` checks it), while `iat`/`nbf` say when
 * it was signed and `jti` is fresh for each token.
 *
 * States: running → stopped (terminal: nothing is signed or handed out).
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { signRunToken } from '../protocol/index.ts';
import type { SigningKey } from '../protocol/index.ts';
import { StateMachine } from '../state-machine.ts';

/** Most tokens held at once. */
export const PRESIGNED_TOKENS_MAX = 32;
/** How long a pre-signed token may wait for its claim. */
export const PRESIGNED_TOKEN_MAX_AGE_MS = 2_000;

interface Presigned {
  token: string;
  signedAt: number;
  expiresAtSeconds: number;
}

/** `entries`: run id → its pre-signed token, oldest first (a Map keeps insertion order). */
type PresignedTokensState = { readonly kind: 'running'; readonly entries: Map<string, Presigned> } | { readonly kind: 'stopped' };

/** What a claim needs to sign a run's token: the run and the attempt it hands out. */
export interface TokenRequest {
  id: string;
  attempt: number;
  runTimeoutMs: number;
}

export interface PresignedTokensOptions {
  privateKey: SigningKey;
  /** Added to the run timeout for the token's expiry, from the claim. */
  graceMs: number;
  maxEntries?: number;
  maxAgeMs?: number;
  logger: Logger;
  /** The clock, for tests; default `Date.now`. */
  now?: () => number;
  /** A token was signed ahead (a metric: set beside the claims' `ahead` count, it shows how many went unused). */
  onSigned?: () => void;
}

export class PresignedTokens {
  readonly #privateKey: SigningKey;
  readonly #graceMs: number;
  readonly #maxEntries: number;
  readonly #maxAgeMs: number;
  readonly #logger: Logger;
  readonly #now: () => number;
  readonly #onSigned: () => void;
  readonly #state: StateMachine<PresignedTokensState>;

  constructor(options: PresignedTokensOptions) {
    this.#privateKey = options.privateKey;
    this.#graceMs = options.graceMs;
    this.#maxEntries = options.maxEntries ?? PRESIGNED_TOKENS_MAX;
    this.#maxAgeMs = options.maxAgeMs ?? PRESIGNED_TOKEN_MAX_AGE_MS;
    this.#logger = options.logger;
    this.#now = options.now ?? Date.now;
    this.#onSigned = options.onSigned ?? (() => {});
    this.#state = new StateMachine<PresignedTokensState>({
      name: 'presigned run tokens',
      initial: { kind: 'running', entries: new Map() },
      transitions: { running: ['stopped'], stopped: [] },
      logger: options.logger,
    });
  }

  /** Signs the token of a just-submitted run on the next turn of the event loop (after the push just sent). */
  presignSoon(runId: string, runTimeoutMs: number): void {
    if (this.#state.kind !== 'running' || this.#maxEntries <= 0) return;
    setImmediate(() => {
      try {
        this.presign(runId, runTimeoutMs);
      } catch (error) {
        // The claim signs it then: nothing is lost but the head start.
        this.#logger.warn({ err: error, runId }, 'run token not pre-signed');
      }
    });
  }

  /** Signs and keeps the token of a run not yet claimed, unless the cache is full. */
  presign(runId: string, runTimeoutMs: number): void {
    const entries = this.#state.when('running')?.entries;
    if (entries === undefined) return;
    const now = this.#now();
    prune(entries, now - this.#maxAgeMs);
    if (entries.size >= this.#maxEntries || entries.has(runId)) return;
    const expiresAtSeconds = Math.ceil((now + this.#maxAgeMs + runTimeoutMs + this.#graceMs) / 1000);
    const token = signRunToken(this.#privateKey, runId, { nowSeconds: Math.floor(now / 1000), expiresAtSeconds, tokenId: randomUUID() });
    entries.set(runId, { token, signedAt: now, expiresAtSeconds });
    this.#onSigned();
  }

  /**
   * The token for a claim made at `now`: the pre-signed one when the run is on
   * its first attempt, the token is still within its age and its `exp` covers
   * the timeout and grace from now (one use); otherwise one signed now.
   * `presigned` says which.
   */
  tokenFor(run: TokenRequest, now: number): { token: string; presigned: boolean } {
    const expiresAtSeconds = Math.ceil((now + run.runTimeoutMs + this.#graceMs) / 1000);
    const entries = this.#state.when('running')?.entries;
    const cached = entries?.get(run.id);
    if (entries !== undefined && cached !== undefined) {
      entries.delete(run.id);
      if (run.attempt === 1 && now - cached.signedAt <= this.#maxAgeMs && cached.expiresAtSeconds >= expiresAtSeconds) {
        return { token: cached.token, presigned: true };
      }
    }
    return { token: signRunToken(this.#privateKey, run.id, { nowSeconds: Math.floor(now / 1000), expiresAtSeconds, tokenId: randomUUID() }), presigned: false };
  }

  /** Tokens held now. */
  get size(): number {
    return this.#state.when('running')?.entries.size ?? 0;
  }

  stop(): void {
    if (this.#state.kind === 'running') this.#state.to({ kind: 'stopped' });
  }
}

/** Drops the tokens signed before `oldest` (they come first). */
function prune(entries: Map<string, Presigned>, oldest: number): void {
  for (const [runId, entry] of entries) {
    if (entry.signedAt >= oldest) break;
    entries.delete(runId);
  }
}
