/**
 * A lane's contract with what claims and what runs: the `Claimer` it asks for
 * runs, the `RunStarter` it hands each run to, the `ClaimSettled` report it
 * makes after every claim, and the `WorkloopOptions` a lane is made with. The
 * worker implements them over its `worker:queue` channel and the engine;
 * tests use in-memory fakes.
 */
import type { Logger } from 'pino';
import type { ClaimedRun } from '../protocol/messages.ts';
import type { LaneMemory } from './lane-memory.ts';
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
  /**
   * How long the server may hold this claim, sent now, before answering it
   * empty (`held_claims`); 0 or absent: it is answered at once. An empty
   * reply after such a hold is not a reason to back off: the lane claims
   * again at once.
   */
  holdMs?(request: ClaimRequest): number;
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

/** What a lane (`Workloop`) is made with. */
export interface WorkloopOptions {
  spec: Readonly<LaneSpec>;
  claimer: Claimer;
  startRun: RunStarter;
  /** Backoff between empty or failed claims; doubles with jitter from min up to max. */
  backoff: Readonly<{ minMs: number; maxMs: number }>;
  logger: Logger;
  /** Called after every claim; must not throw (a throw is logged and ignored). */
  onClaimSettled?: (event: ClaimSettled) => void;
  /** The lane's memory share; without it only slots bound the lane. */
  memory?: LaneMemory;
  /** Whether the server takes memory claims now (asked before each claim: it changes on reconnect). */
  memoryClaims?: () => boolean;
  /**
   * A run went to the backlog (the server gave more than the demand): it
   * starts when a slot frees. The worker keeps its lease alive meanwhile.
   * Must not throw (a throw is logged and ignored).
   */
  onBacklogged?: (run: ClaimedRun) => void;
}
