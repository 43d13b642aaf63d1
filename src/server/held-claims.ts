/**
 * The claims one `worker:queue` connection holds (`held_claims`,
 * docs/protocol.md): a claim that found nothing and asked for `hold_ms`
 * waits here, and is tried again the moment work is queued that its chain
 * may take (`serve`), instead of the server pushing `work-available` and the
 * worker claiming again: on an idle worker that round trip was most of the
 * way from submit to the claim.
 *
 * A claim that may be held is held from before its first try (`claim`):
 * a run queued while that try reads the queues would otherwise be missed by
 * it and, the claim not yet held, by `serve`, and wait for the hold to end.
 *
 * Each held claim is answered exactly once: with the runs of a try that
 * found some, with `{runs: []}` when its time is up or on `claim:release`,
 * or never when the connection ends (its reply could not be sent).
 *
 * Order: a claim whose chain names the queue comes before one that reaches
 * it through `*` (a pinned lane, the fast lane, before a general one, as the
 * worker wakes its lanes), then the one held longest. A claim is tried by
 * one `serve` (or hand-off) at a time; work queued while it is being tried
 * makes it try once more before it goes back to waiting, so no queued run is
 * missed.
 *
 * Hand-off (`handOff`): a run being submitted on SQLite is offered to the
 * first held claim in that order inside the submission's own transaction
 * (run-hand-off.ts): the claim is tried there, with the same rules as every other try,
 * and answered once the caller says the transaction committed, or goes back
 * to waiting if it rolled back.
 *
 * States: open → closed (terminal: the connection ended; nothing is held).
 */
import { chainCouldTake, WILDCARD } from '../protocol/index.ts';
import type { ClaimReply } from '../protocol/index.ts';
import { StateMachine } from '../state-machine.ts';
import type { StateLogger } from '../state-machine.ts';

/** One try of a held claim: the reply, and whether it asked for more runs than it got (the queues are drained). */
export interface ClaimTry {
  reply: ClaimReply;
  drained: boolean;
  /**
   * For a try made inside a caller's transaction: what the claim does once
   * its runs are surely its own (metrics, logs), called after the commit.
   * A try of its own has done that already.
   */
  claimed?: () => void;
}

/** A held claim tried inside a caller's transaction (`handOff`); the caller settles it once the transaction ended. */
export interface HandOff {
  /** What the try claimed, in the transaction. */
  readonly runs: ClaimReply['runs'];
  /** `true`: committed, the claim is answered with its runs; `false`: rolled back, it waits on. Call once. */
  settle(committed: boolean): void;
}

/**
 * Tries a held claim: on its own (`within` undefined; must not reject) or
 * inside a caller's transaction (`within`; a rejection rolls that back).
 */
export type ClaimRetry<W> = (within?: W) => Promise<ClaimTry>;

interface HeldClaim<W> {
  readonly chain: readonly string[];
  readonly heldAt: number;
  readonly retry: ClaimRetry<W>;
  readonly answer: (reply: ClaimReply) => void;
  timer: NodeJS.Timeout;
  /** A try is running. */
  trying: boolean;
  /** Work came while it was being tried: it tries once more if that try found nothing. */
  again: boolean;
  /** Its time ran out (or a release) while it was being tried: answered empty if that try found nothing. */
  expired: boolean;
  ended: boolean;
}

type HeldClaimsState<W> = { readonly kind: 'open'; readonly claims: HeldClaim<W>[] } | { readonly kind: 'closed' };

const EMPTY: ClaimReply = Object.freeze({ runs: [] }) as ClaimReply;

/** `W`: what a try inside a caller's transaction is given (the transaction's handle and what it stores). */
export class HeldClaims<W> {
  readonly #state: StateMachine<HeldClaimsState<W>>;

  constructor(logger: StateLogger) {
    this.#state = new StateMachine<HeldClaimsState<W>>({
      name: 'held claims',
      initial: { kind: 'open', claims: [] },
      transitions: { open: ['closed'], closed: [] },
      logger,
    });
  }

  /** Claims held now. */
  get size(): number {
    return this.#state.when('open')?.claims.length ?? 0;
  }

  /**
   * A claim that may wait up to `holdMs`, held from before its first try
   * (`first`, which may reject: the claim is then dropped and the rejection
   * passed on). Work queued while that try runs makes it try again, as for
   * any held claim, so a run submitted between the try's read and the hold
   * is never left waiting for the hold to end. `now`: the first try found
   * runs (or the hold ended during it); `later`: the claim waits, and
   * resolves with its reply. `retry` tries it again (it must not reject).
   */
  async claim(chain: readonly string[], holdMs: number, first: () => Promise<ClaimTry>, retry: ClaimRetry<W>): Promise<{ now: ClaimReply } | { later: Promise<ClaimReply> }> {
    const open = this.#state.when('open');
    if (open === undefined) return { now: (await first()).reply };
    const { promise, resolve } = Promise.withResolvers<ClaimReply>();
    const claim: HeldClaim<W> = {
      chain,
      heldAt: Date.now(),
      retry,
      answer: resolve,
      timer: setTimeout(() => this.#expire(claim), holdMs),
      trying: true,
      again: false,
      expired: false,
      ended: false,
    };
    // Nothing to wait for when the server stops: its sockets close, and the reply could not be sent.
    claim.timer.unref();
    open.claims.push(claim);
    let tried: ClaimTry;
    try {
      tried = await first();
    } catch (error) {
      claim.trying = false;
      this.#drop(claim);
      throw error;
    }
    claim.trying = false;
    if (claim.ended) return { now: tried.reply };
    if (tried.reply.runs.length > 0 || claim.expired) {
      this.#drop(claim);
      return { now: tried.reply };
    }
    if (claim.again) void this.#try(claim);
    return { later: promise };
  }

  /**
   * Work was queued in `queue`: tries the held claims that could take it, in
   * order, until one comes back drained. Resolves once done: true when one
   * found the queues drained, false when every one took runs or was being
   * tried already (that one tries again).
   */
  serve(queue: string): Promise<boolean> {
    return this.#serveInOrder(this.#ordered(queue));
  }

  /**
   * Work of `queue` is being stored in a caller's transaction: tries the
   * first held claim that could take it (in `serve`'s order, skipping one
   * being tried) inside that transaction (`within`). The claim is answered
   * only when the caller settles the hand-off after the transaction ends.
   * Undefined when no held claim could take it now. A rejection of the try
   * is passed on (the caller rolls back); the claim then waits on.
   */
  async handOff(queue: string, within: W): Promise<HandOff | undefined> {
    const claim = this.#ordered(queue).find((candidate) => !candidate.trying);
    if (claim === undefined) return undefined;
    claim.trying = true;
    let tried: ClaimTry;
    try {
      tried = await claim.retry(within);
    } catch (error) {
      this.#settle(claim, undefined);
      throw error;
    }
    let settled = false;
    return {
      runs: tried.reply.runs,
      settle: (committed) => {
        if (settled) return;
        settled = true;
        this.#settle(claim, committed ? tried : undefined);
      },
    };
  }

  /** How many held claims could take work of `queue` (nothing is tried). */
  count(queue: string): number {
    return this.#candidates(queue).length;
  }

  /** The candidates for work of `queue`, in the order they are tried. */
  #ordered(queue: string): HeldClaim<W>[] {
    return this.#candidates(queue).sort((a, b) => rank(a.chain, queue) - rank(b.chain, queue) || a.heldAt - b.heldAt);
  }

  #candidates(queue: string): HeldClaim<W>[] {
    const open = this.#state.when('open');
    if (open === undefined) return [];
    return open.claims.filter((claim) => !claim.ended && chainCouldTake(claim.chain, [queue]));
  }

  /** `claim:release`: answers every held claim with no runs (one being tried, once its try ends empty). */
  releaseAll(): void {
    const open = this.#state.when('open');
    if (open === undefined) return;
    for (const claim of [...open.claims]) this.#expire(claim);
  }

  /** The connection ended: nothing is answered any more. */
  close(): void {
    const open = this.#state.when('open');
    if (open === undefined) return;
    for (const claim of open.claims) {
      clearTimeout(claim.timer);
      claim.ended = true;
    }
    this.#state.to({ kind: 'closed' });
  }

  async #serveInOrder(candidates: readonly HeldClaim<W>[]): Promise<boolean> {
    for (const claim of candidates) {
      if (claim.ended) continue;
      if (claim.trying) {
        // Its running try may have missed this work: it tries once more if it found none. The next may take it meanwhile.
        claim.again = true;
        continue;
      }
      const drained = await this.#try(claim);
      if (drained) return true;
      // Let the reply just given go out before the next claim's transaction.
      await new Promise((resolve) => setImmediate(resolve));
    }
    return false;
  }

  /** Tries one claim (again while work came during the try); true when the queues were drained. */
  async #try(claim: HeldClaim<W>): Promise<boolean> {
    claim.trying = true;
    try {
      for (;;) {
        claim.again = false;
        const result = await claim.retry();
        if (claim.ended) return result.drained;
        if (result.reply.runs.length > 0) {
          this.#end(claim, result.reply);
          return result.drained;
        }
        if (claim.expired) {
          this.#end(claim, EMPTY);
          return true;
        }
        if (!claim.again) return true;
      }
    } finally {
      claim.trying = false;
    }
  }

  /**
   * A hand-off's try ended with its transaction: `tried` when it committed.
   * Its runs are the answer; without runs it is answered empty if its time
   * ran out meanwhile, tries again if work came meanwhile, or waits on.
   */
  #settle(claim: HeldClaim<W>, tried: ClaimTry | undefined): void {
    claim.trying = false;
    if (tried !== undefined && tried.reply.runs.length > 0) {
      // Stored as claimed whether or not the reply can still be sent (the connection may have ended): counted and logged.
      tried.claimed?.();
      if (!claim.ended) this.#end(claim, tried.reply);
      return;
    }
    if (claim.ended) return;
    if (claim.expired) this.#end(claim, EMPTY);
    else if (claim.again) void this.#try(claim);
  }

  /** Its time is up (or a release): answered empty, unless a try is running, which then decides. */
  #expire(claim: HeldClaim<W>): void {
    if (claim.ended) return;
    if (!claim.trying) {
      this.#end(claim, EMPTY);
      return;
    }
    // The try's runs, if it finds any, are the answer; otherwise the answer is empty (#try).
    claim.expired = true;
  }

  #end(claim: HeldClaim<W>, reply: ClaimReply): void {
    this.#drop(claim);
    claim.answer(reply);
  }

  /** No longer held; answered by the caller (or not at all). */
  #drop(claim: HeldClaim<W>): void {
    claim.ended = true;
    clearTimeout(claim.timer);
    const open = this.#state.when('open');
    if (open === undefined) return;
    const index = open.claims.indexOf(claim);
    if (index >= 0) open.claims.splice(index, 1);
  }
}

/** 0 when the chain names the queue, 1 when it takes it through `*`. */
function rank(chain: readonly string[], queue: string): number {
  return chain.includes(queue) ? 0 : chain.includes(WILDCARD) ? 1 : 2;
}
