/**
 * A lane's preference chain as the wire carries it (a claim's `queues`, a
 * join's lanes): queue names, highest priority first, the wildcard `*` only
 * last. The schema below checks each name; `chainOrderProblem` the one rule a
 * schema cannot say.
 */
import Type from 'typebox';
import { MAX_CHAIN_LENGTH, QUEUE_NAME_PATTERN, queueNameProblem } from './limits.ts';

export const WILDCARD = '*';

/** One name of a chain: a queue name or `*`. */
export const ChainNameSchema = Type.String({
  pattern: `^(?:${QUEUE_NAME_PATTERN.source.slice(1, -1)}|\\*)$`,
  message: (value: unknown) => `queue name ${queueNameProblem(value) ?? 'is not valid'}`,
});

/** A chain: 1 to MAX_CHAIN_LENGTH names (each name is two SQL parameters in the claim query: far from SQLite's limit). */
export const ChainSchema = Type.Array(ChainNameSchema, {
  minItems: 1,
  maxItems: MAX_CHAIN_LENGTH,
  message: (value: unknown) =>
    !Array.isArray(value) ? 'must be a list of queue names' : value.length === 0 ? 'must name at least one queue' : `must name at most ${MAX_CHAIN_LENGTH} queues`,
});

/** `* may only be last`, or undefined for a chain whose names already fit `ChainSchema`. */
export function chainOrderProblem(chain: readonly string[]): string | undefined {
  const star = chain.indexOf(WILDCARD);
  return star !== -1 && star !== chain.length - 1 ? '* may only be last' : undefined;
}

/** Whether a lane with this chain could take a run of one of `queues`: the chain names it, or ends in `*`. */
export function chainCouldTake(chain: readonly string[], queues: readonly string[]): boolean {
  return chain.includes(WILDCARD) || queues.some((queue) => chain.includes(queue));
}
