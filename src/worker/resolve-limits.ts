/**
 * A run's limits: the plan's options may lower the worker's limits, never
 * raise them (a plan cannot buy itself more memory than the lane was sized for).
 *
 * Memory: the run's own limit is its plan's `run_memory_limit_mb`, else
 * --run-memory, and never more than what its lane reserved for it
 * (`reservedMb`; with a ceiling and memory claims that is the plan's need).
 */
import type { WorkerConfig } from '../config/worker-config.ts';
import type { RunLimits } from '../engine/types.ts';
import type { PlanOptions } from '../protocol/messages.ts';

type LimitConfig = Pick<WorkerConfig, 'maxRunDurationMs' | 'runMemoryLimitMb' | 'payloadLimitMb' | 'logPayloadLimitMb' | 'statePropsToRemove'>;

export function resolveLimits(config: LimitConfig, options: PlanOptions | undefined, reservedMb?: number): RunLimits {
  return {
    timeoutMs: capped(options?.run_timeout_ms, config.maxRunDurationMs),
    memoryLimitMb: Math.floor(capped(options?.run_memory_limit_mb, reservedMb ?? config.runMemoryLimitMb)),
    payloadLimitMb: capped(options?.payload_limit_mb, config.payloadLimitMb),
    logPayloadLimitMb: capped(options?.log_payload_limit_mb, config.logPayloadLimitMb),
    statePropsToRemove: config.statePropsToRemove,
  };
}

function capped(requested: unknown, ceiling: number): number {
  if (typeof requested !== 'number' || !Number.isFinite(requested) || requested <= 0) return ceiling;
  return Math.min(requested, ceiling);
}
