/**
 * Keeps a step's oversized output state out of @openfn/runtime's clone.
 *
 * The runtime clones every step's final state (JSON text, then parse) and
 * the next step's input again: a 150 MB state briefly needs three times
 * that, an OOMError under the default 500 MB limit for an output that should
 * only have been refused as DATACLIP_TOO_LARGE. So the job's last operation
 * sizes the state first, with a cheap lower bound that allocates nothing; a
 * state over the payload limit is kept aside in this thread and the runtime
 * clones a small placeholder instead. The next step's first operation puts
 * the real state back (with the configuration the runtime assembled for it),
 * so a downstream job sees exactly what the upstream one returned.
 */
import { randomUUID } from 'node:crypto';
import { jsonBytesAtLeast } from './payload-limits.ts';

const MB = 1024 * 1024;
/** The key that marks a placeholder; its value is the stash id. */
export const OVERSIZED_STATE_KEY = '__lanes_oversized_state';

export interface OversizedPlaceholder {
  [OVERSIZED_STATE_KEY]: string;
  /** At least this many bytes of JSON (a lower bound, counted until past the limit). */
  bytes: number;
  webhookResponse?: unknown;
}

export function isOversizedPlaceholder(state: unknown): state is OversizedPlaceholder {
  return typeof state === 'object' && state !== null && typeof (state as Record<string, unknown>)[OVERSIZED_STATE_KEY] === 'string';
}

/** The two operations one run brackets its jobs with, and the states they keep aside. */
export class OversizedStateGuard {
  readonly #limitBytes: number;
  readonly #removeProps: readonly string[];
  readonly #stash = new Map<string, Record<string, unknown>>();

  constructor(payloadLimitMb: number, statePropsToRemove: readonly string[]) {
    this.#limitBytes = payloadLimitMb * MB;
    this.#removeProps = statePropsToRemove;
  }

  /** The job's last operation: an oversized state becomes a placeholder. */
  readonly keepAside = (state: unknown): unknown => {
    if (this.#limitBytes <= 0 || typeof state !== 'object' || state === null || Array.isArray(state)) return state;
    const bytes = jsonBytesAtLeast(state, this.#limitBytes);
    if (bytes <= this.#limitBytes) return state;
    const real = state as Record<string, unknown>;
    // What the runtime would have removed from the state it clones (credentials among them).
    for (const prop of this.#removeProps) delete real[prop];
    const id = randomUUID();
    this.#stash.set(id, real);
    const placeholder: OversizedPlaceholder = { [OVERSIZED_STATE_KEY]: id, bytes };
    if (real['webhookResponse'] !== undefined) placeholder.webhookResponse = real['webhookResponse'];
    return placeholder;
  };

  /** The next job's first operation: a placeholder becomes the real state again, with this step's configuration. */
  readonly putBack = (state: unknown): unknown => {
    if (!isOversizedPlaceholder(state)) return state;
    const id = state[OVERSIZED_STATE_KEY];
    // Kept until the run's thread ends: two branches after one step both get the state (the same object).
    const real = this.#stash.get(id);
    if (real === undefined) return state;
    const assembled = state as unknown as Record<string, unknown>;
    if (assembled['configuration'] !== undefined) real['configuration'] = assembled['configuration'];
    return real;
  };
}
