/** The errors a lane's claim cycle backs off from: an empty claim and a failed one. */
import { LanesError } from '../errors/lanes-error.ts';

/** An empty claim: a normal outcome that the loop backs off from. */
export class EmptyClaimError extends LanesError {
  constructor() {
    super('CLAIM_EMPTY', 'no work available');
  }
}

/** A claim that failed; wraps the cause so that p-retry retries it even when it was a TypeError. */
export class ClaimError extends LanesError {
  constructor(cause: unknown) {
    super('CLAIM_FAILED', `claim failed: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
}
