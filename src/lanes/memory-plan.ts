/**
 * How a worker's memory ceiling splits across its lanes (docs/memory.md).
 *
 * With `--max-memory M`, the ceiling bounds the worker process and every
 * engine child:
 *
 *   M = worker + children × child + Σ lane memory
 *
 * `worker` is the worker process itself, `child` what one pooled child costs
 * before its run allocates anything (Node, the runtime, its warm thread), and
 * `children` the pool: one child per slot plus the spares. What is left is
 * the memory for runs: a lane that says `@MB` takes that much; the others
 * share the rest in proportion to their slots. A run of limit L reserves L in
 * its lane; its child is already counted. Each lane owns its part: no other
 * lane's runs can take it, so a default lane full of big runs never leaves the
 * fast lane without memory.
 *
 * Without a ceiling, today's rule holds: a lane without `@MB` has
 * capacity × --run-memory, so memory never stops a lane before its slots do,
 * and the ceiling printed is Σ capacity × --run-memory (runs only, the
 * processes not counted).
 */
import { LanesError } from '../errors/lanes-error.ts';
import type { LaneSpec } from './parse-workloops.ts';

/** What the worker process keeps for itself, in MB (measured idle at ~100 MB RSS; claims, channels and logs add to it). */
export const WORKER_MEMORY_MB = 160;
/**
 * What one pooled child may cost before its run allocates, in MB: measured
 * idle with its warm thread at ~67 MB RSS, 83-91 MB with language-common
 * loaded (docs/memory.md); the rest is what a child may keep between runs
 * before it is recycled. With a ceiling the engine holds children to it: an idle child
 * above it is recycled, a busy one is killed above its run's limit plus this.
 */
export const CHILD_MEMORY_MB = 160;
/** A lane with less memory than this free does not claim: no useful run fits. */
export const MIN_RUN_MEMORY_MB = 32;

export interface MemoryPlanInput {
  lanes: readonly Readonly<LaneSpec>[];
  /** `--run-memory`: the need of a run whose plan declares none. */
  runMemoryMb: number;
  /** `--max-memory`, or null for none. */
  maxMemoryMb: number | null;
  /** Engine children beyond the capacity. */
  spareChildren: number;
  workerMemoryMb?: number;
  childMemoryMb?: number;
}

export interface LaneMemoryPlan {
  lane: string;
  /** What the lane's runs may use together, in MB. */
  memoryMb: number;
  /** The need of a run whose plan declares none: --run-memory, or the lane's memory when that is smaller. */
  defaultRunMb: number;
  /** The largest run the lane takes: its memory with a ceiling, else also capped by --run-memory (today's rule). */
  largestRunMb: number;
}

export interface MemoryPlan {
  /** Whether --max-memory was given: memory then gates claims and is printed as a promise. */
  bounded: boolean;
  /** The ceiling in MB: --max-memory, or without it Σ lane memory (runs only). */
  ceilingMb: number;
  workerMb: number;
  childMb: number;
  children: number;
  /** workerMb + children × childMb when bounded, else 0 (not counted). */
  overheadMb: number;
  lanes: LaneMemoryPlan[];
  /** The largest run any lane can take: the engine's heap cap. */
  largestRunMb: number;
}

/** A ceiling the lanes cannot live in; the message names the numbers. */
export class MemoryPlanError extends LanesError {
  constructor(message: string) {
    super('INVALID_MEMORY_PLAN', message);
  }
}

export function planMemory(input: MemoryPlanInput): MemoryPlan {
  const workerMb = input.workerMemoryMb ?? WORKER_MEMORY_MB;
  const childMb = input.childMemoryMb ?? CHILD_MEMORY_MB;
  const capacity = input.lanes.reduce((sum, lane) => sum + lane.capacity, 0);
  const children = capacity + input.spareChildren;

  if (input.maxMemoryMb === null) {
    const lanes = input.lanes.map((lane) => {
      const memoryMb = lane.memoryMb ?? lane.capacity * input.runMemoryMb;
      if (memoryMb < MIN_RUN_MEMORY_MB) throw new MemoryPlanError(`lane "${lane.id}" has ${memoryMb} MB, less than the smallest run (${MIN_RUN_MEMORY_MB} MB)`);
      const defaultRunMb = Math.min(input.runMemoryMb, memoryMb);
      return { lane: lane.id, memoryMb, defaultRunMb, largestRunMb: defaultRunMb };
    });
    const ceilingMb = lanes.reduce((sum, lane) => sum + lane.memoryMb, 0);
    return { bounded: false, ceilingMb, workerMb, childMb, children, overheadMb: 0, lanes, largestRunMb: largest(lanes) };
  }

  const ceiling = input.maxMemoryMb;
  const overheadMb = workerMb + children * childMb;
  const forRuns = ceiling - overheadMb;
  const explicit = input.lanes.reduce((sum, lane) => sum + (lane.memoryMb ?? 0), 0);
  const rest = forRuns - explicit;
  if (rest < 0 || forRuns <= 0) {
    throw new MemoryPlanError(
      `--max-memory ${ceiling} MB leaves ${forRuns} MB for runs after the worker (${workerMb} MB) and ${children} children × ${childMb} MB, ` +
        (explicit > 0 ? `and the lanes ask for ${explicit} MB with "@"` : 'so no lane can take a run'),
    );
  }
  const shared = input.lanes.filter((lane) => lane.memoryMb === undefined);
  const sharedSlots = shared.reduce((sum, lane) => sum + lane.capacity, 0);
  const lanes = input.lanes.map((lane): LaneMemoryPlan => {
    const memoryMb = lane.memoryMb ?? Math.floor((rest * lane.capacity) / sharedSlots);
    if (lane.memoryMb === undefined && memoryMb < input.runMemoryMb) {
      throw new MemoryPlanError(
        `--max-memory ${ceiling} MB gives lane "${lane.id}" ${memoryMb} MB, less than one run of --run-memory ${input.runMemoryMb} MB ` +
          `(worker ${workerMb} MB + ${children} children × ${childMb} MB + lanes' "@" ${explicit} MB come first)`,
      );
    }
    if (memoryMb < MIN_RUN_MEMORY_MB) {
      throw new MemoryPlanError(`lane "${lane.id}" has ${memoryMb} MB, less than the smallest run (${MIN_RUN_MEMORY_MB} MB)`);
    }
    return { lane: lane.id, memoryMb, defaultRunMb: Math.min(input.runMemoryMb, memoryMb), largestRunMb: memoryMb };
  });
  return { bounded: true, ceilingMb: ceiling, workerMb, childMb, children, overheadMb, lanes, largestRunMb: largest(lanes) };
}

function largest(lanes: readonly LaneMemoryPlan[]): number {
  return lanes.reduce((max, lane) => Math.max(max, lane.largestRunMb), 0);
}
