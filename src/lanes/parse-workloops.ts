/**
 * The `--workloops` grammar (DESIGN.md):
 *
 *   workloops := lane (WS+ lane)*        surrounding white space is ignored
 *   lane      := queues ":" capacity ("@" memory)?
 *   queues    := name (">" name)*        highest priority first
 *   name      := [A-Za-z0-9_]+ | "*"     "*" only last
 *   capacity  := [1-9][0-9]*             no sign, no decimals, no leading zero
 *   memory    := [1-9][0-9]*             MB the lane's runs may use together
 *                                        (docs/memory.md); without it the lane
 *                                        gets its share of the worker's memory
 *
 * A repeated name within a lane and two lanes with the same chain are legal
 * but probably mistakes: they come back as warnings for the caller to log.
 */
import { WILDCARD } from '../protocol/events.ts';
import { MAX_CHAIN_LENGTH, MAX_LANE_CAPACITY, MAX_LANES, MAX_QUEUE_NAME_LENGTH, MAX_WORKER_CAPACITY, queueNameProblem } from '../protocol/limits.ts';
import { WorkloopsError } from './workloops-error.ts';

/** One lane, as parsed: what a `Workloop` is made from. */
export interface LaneSpec {
  /**
   * The lane as written, normalised: `fast_lane:1`, `manual>*:4`. A lane
   * written again (`dup:1 dup:1`) is a lane of its own, named `dup:1#2`, so
   * metrics and logs keep the two apart.
   */
  id: string;
  /** Preference chain, highest priority first; `*` only last. */
  queues: string[];
  capacity: number;
  /** The lane's memory for runs in MB, when the lane says (`fast_lane:1@256`); else the memory plan splits it. */
  memoryMb?: number;
}

export interface ParsedWorkloops {
  lanes: LaneSpec[];
  warnings: string[];
}

/** A lane's capacity above this is certainly a typo, and the server would refuse the join (protocol/limits.ts). */
export { MAX_LANE_CAPACITY };
/** A lane's memory above this (1 TB) is certainly a typo. */
export const MAX_LANE_MEMORY_MB = 1_048_576;

const CAPACITY_PATTERN = /^[1-9][0-9]*$/;

/** Parses a `--workloops` string; throws `WorkloopsError` naming the offending token. */
export function parseWorkloops(input: string): ParsedWorkloops {
  const tokens = input.split(/\s+/).filter((token) => token.length > 0);
  if (tokens.length === 0) throw new WorkloopsError(input, 'must hold at least one lane, like "manual>*:5"');

  if (tokens.length > MAX_LANES) throw new WorkloopsError(`${tokens.slice(0, 3).join(' ')} ...`, `at most ${MAX_LANES} lanes, got ${tokens.length}`);
  const lanes = tokens.map(parseLane);
  const written = new Map<string, number>();
  for (const lane of lanes) {
    const count = (written.get(lane.id) ?? 0) + 1;
    written.set(lane.id, count);
    if (count > 1) lane.id = `${lane.id}#${count}`;
  }
  const total = lanes.reduce((sum, lane) => sum + lane.capacity, 0);
  if (total > MAX_WORKER_CAPACITY) throw new WorkloopsError(`${tokens.slice(0, 3).join(' ')} ...`, `the lanes' capacities must add up to at most ${MAX_WORKER_CAPACITY}, got ${total}`);
  const warnings: string[] = [];
  const seenChains = new Set<string>();
  for (const lane of lanes) {
    const chain = lane.queues.join('>');
    if (seenChains.has(chain)) warnings.push(`two lanes have the same queue chain "${chain}"`);
    seenChains.add(chain);
    const names = new Set<string>();
    for (const name of lane.queues) {
      if (names.has(name)) warnings.push(`lane "${lane.id}" names queue "${name}" more than once`);
      names.add(name);
    }
  }
  return { lanes, warnings };
}

function parseLane(token: string): LaneSpec {
  const colon = token.indexOf(':');
  if (colon === -1) throw new WorkloopsError(token, 'a lane is QUEUES:CAPACITY, and this one has no ":"');
  if (token.indexOf(':', colon + 1) !== -1) throw new WorkloopsError(token, 'a lane has exactly one ":"');

  const chain = token.slice(0, colon);
  const rest = token.slice(colon + 1);
  const at = rest.indexOf('@');
  const capacityText = at === -1 ? rest : rest.slice(0, at);
  const memoryText = at === -1 ? null : rest.slice(at + 1);
  if (chain.length === 0) throw new WorkloopsError(token, 'a lane needs at least one queue name before ":"');

  const queues = chain.split('>');
  queues.forEach((name, index) => {
    if (name.length === 0) throw new WorkloopsError(token, 'queue names joined by ">" must not be empty');
    if (name === WILDCARD) {
      if (index !== queues.length - 1) throw new WorkloopsError(token, '"*" may only be the last queue of a lane');
      return;
    }
    const problem = queueNameProblem(name);
    if (problem === undefined) return;
    if (name.length > MAX_QUEUE_NAME_LENGTH) throw new WorkloopsError(`${name.slice(0, 20)}...`, `a queue name must be at most ${MAX_QUEUE_NAME_LENGTH} characters, got ${name.length}`);
    throw new WorkloopsError(name, 'a queue name may hold only letters, digits and "_" (or be "*")');
  });
  if (queues.length > MAX_CHAIN_LENGTH) throw new WorkloopsError(`${chain.slice(0, 40)}...`, `a lane may name at most ${MAX_CHAIN_LENGTH} queues, got ${queues.length}`);

  if (capacityText.length === 0) throw new WorkloopsError(token, 'a lane needs a capacity after ":"');
  if (!CAPACITY_PATTERN.test(capacityText)) {
    throw new WorkloopsError(capacityText, 'capacity must be a positive whole number without sign or leading zeros');
  }
  const capacity = Number(capacityText);
  if (capacity > MAX_LANE_CAPACITY) {
    throw new WorkloopsError(capacityText, `capacity must be at most ${MAX_LANE_CAPACITY}`);
  }
  if (memoryText === null) return { id: `${chain}:${capacity}`, queues, capacity };
  if (!CAPACITY_PATTERN.test(memoryText)) {
    throw new WorkloopsError(memoryText, 'a lane\'s memory after "@" must be a positive whole number of MB without sign or leading zeros');
  }
  const memoryMb = Number(memoryText);
  if (memoryMb > MAX_LANE_MEMORY_MB) throw new WorkloopsError(memoryText, `a lane's memory must be at most ${MAX_LANE_MEMORY_MB} MB`);
  return { id: `${chain}:${capacity}@${memoryMb}`, queues, capacity, memoryMb };
}

/** Prints lanes back in the grammar; `parseWorkloops(formatWorkloops(x)).lanes` equals `x`. */
export function formatWorkloops(lanes: readonly LaneSpec[]): string {
  return lanes.map((lane) => `${lane.queues.join('>')}:${lane.capacity}${lane.memoryMb === undefined ? '' : `@${lane.memoryMb}`}`).join(' ');
}

/**
 * Whether a lane pins its queues (no `*` in its chain, like `fast_lane:1`):
 * its runs are urgent, and its slots keep warm children (docs/engine.md).
 */
export function pinsQueues(lane: LaneSpec): boolean {
  return !lane.queues.includes(WILDCARD);
}

/** The default lanes for `--capacity N` (and N = 5 when neither option is given). */
export function defaultWorkloops(capacity: number): LaneSpec[] {
  return [{ id: `manual>*:${capacity}`, queues: ['manual', WILDCARD], capacity }];
}
