/**
 * A lane's contract with what claims and what runs: the `Claimer` it asks for
 * runs, the `RunStarter` it hands each run to, and the `ClaimSettled` report
 * it makes after every claim. The worker implements both over its
 * `worker:queue` channel and the engine; tests use in-memory fakes.
 */
import type { ClaimedRun } from '../protocol/messages.ts';
import type { LaneSpec } from './parse-workloops.ts';

/** What a lane asks for: at most `demand` runs from `queues` (ordered, `*` last). */
export interface ClaimRequest {
  demand: number;
  queues: readonly string[];
  /** The lane's memory, for a server that takes memory claims (sent only when the lane's memory is bounded). */
  memory?: ClaimMemory;
}

/** What a lane says about memory in a claim (protocol `memory_claims`), in MB. */
export interface ClaimMemory {
  /** Free now: the runs handed out must fit in it together. */
  freeMb: number;
  /** The lane's whole memory: a run needing more never fits this lane. */
  laneMb: number;
  /** The need of a run whose plan declares none. */
  defaultRunMb: number;
}

/** Something that claims runs for a lane (the worker's `worker:queue` channel, or a fake). */
export interface Claimer {
  /**
   * Resolves with the claimed runs (possibly none). Rejects when the claim
   * failed or timed out. `signal` is aborted only by a forced stop.
   */
  claim(request: ClaimRequest, signal: AbortSignal): Promise<readonly ClaimedRun[]>;
}

/**
 * Runs one claimed run to its end, reporting included. The returned promise
 * settles when the slot is free again; a rejection is logged, never rethrown.
 */
export type RunStarter = (run: ClaimedRun, lane: LaneSpec, memoryMb?: number) => Promise<void>;

export type ClaimOutcome = 'runs' | 'empty' | 'error';

/** Reported after every claim, for metrics and tests. */
export interface ClaimSettled {
  lane: string;
  outcome: ClaimOutcome;
  demand: number;
  runs: number;
  /** 1 for the first claim after a success, growing while claims come back empty or fail. */
  attempt: number;
  durationMs: number;
  error?: unknown;
}
