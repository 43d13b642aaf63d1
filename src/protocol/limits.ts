/**
 * The size limits both sides of the protocol enforce, defined once: the
 * server refuses what breaks them (API 422, socket error reply), and the
 * worker's configuration refuses the same at start (exit 2), so a worker
 * never loops on a join the server will refuse.
 */

/** Longest queue name: a name is a label of every per-queue metric and a key in every claim. */
export const MAX_QUEUE_NAME_LENGTH = 64;
/** Queue names: letters, digits and `_`, 1 to 64 of them; or the wildcard `*` (last in a chain only). */
export const QUEUE_NAME_PATTERN = /^[A-Za-z0-9_]{1,64}$/;
/** Most slots of one lane (`--workloops "q:N"`, `--capacity N`, a lane of the `worker:queue` join). */
export const MAX_LANE_CAPACITY = 1000;
/** Most slots of one worker, all lanes together (the `capacity` of the `worker:queue` join). */
export const MAX_WORKER_CAPACITY = 10_000;
/** Most lanes of one worker. */
export const MAX_LANES = 64;
/** Most queue names in one lane's preference chain. */
export const MAX_CHAIN_LENGTH = 64;

/** A run's memory need, declared in its plan's options (PROTOCOL.md). */
export const RUN_MEMORY_OPTION = 'run_memory_limit_mb';
/** Largest memory need a plan may declare, in MB. */
export const MAX_RUN_MEMORY_MB = 1_048_576;

/** Why `name` is not a queue name (the wildcard is not one); undefined when it is. Quotes at most 80 characters of it. */
export function queueNameProblem(name: unknown): string | undefined {
  if (typeof name === 'string' && QUEUE_NAME_PATTERN.test(name)) return undefined;
  const shown = JSON.stringify(name) ?? String(name);
  const quoted = shown.length > 80 ? `${shown.slice(0, 77)}...` : shown;
  if (typeof name === 'string' && name.length > MAX_QUEUE_NAME_LENGTH) {
    return `must be at most ${MAX_QUEUE_NAME_LENGTH} characters, got ${name.length}: ${quoted}`;
  }
  return `must match ^[A-Za-z0-9_]+$, got ${quoted}`;
}
