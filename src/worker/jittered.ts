/** min·2^(tries-1), capped at max, then scaled by a random factor in [0.5, 1] so workers do not reconnect in step. */
export function jittered(minMs: number, maxMs: number, tries: number): number {
  const exponential = Math.min(maxMs, minMs * 2 ** Math.max(0, tries - 1));
  return Math.max(1, Math.round(exponential * (0.5 + Math.random() / 2)));
}
