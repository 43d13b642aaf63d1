/**
 * Why a waiting run is not handed out, when memory is why (docs/memory.md):
 * its plan declares more memory than any connected lane that takes its queue
 * could ever hold. The run stays queued (a bigger worker may connect); the
 * reason is computed when the run is read, from the workers connected now.
 */
import { RUN_MEMORY_OPTION, WILDCARD } from '../protocol/index.ts';
import type { RunRecord } from './store/store.ts';
import type { ConnectedWorker } from './worker-registry.ts';

/** The reason a waiting run cannot be taken by any connected lane, or null when some lane could take it (or none is connected). */
export function memoryWaitReason(run: Pick<RunRecord, 'state' | 'queue' | 'plan'>, workers: readonly Pick<ConnectedWorker, 'lanes' | 'lanesMemoryMb'>[]): string | null {
  if (run.state !== 'available') return null;
  // A plan stored by another server (or a buggy one) may not be an object: it names no memory.
  const plan: unknown = run.plan;
  if (typeof plan !== 'object' || plan === null) return null;
  const need = run.plan.options?.[RUN_MEMORY_OPTION];
  if (typeof need !== 'number') return null;
  let largest: number | null = null;
  for (const worker of workers) {
    for (const chain of Object.keys(worker.lanes)) {
      const names = chain.split('>');
      if (!names.includes(run.queue) && !names.includes(WILDCARD)) continue;
      const memory = worker.lanesMemoryMb?.[chain];
      // A lane not bounded by memory (Lightning-style worker, no ceiling) could take it.
      if (memory === undefined) return null;
      largest = Math.max(largest ?? 0, memory);
    }
  }
  if (largest === null || need <= largest) return null;
  return `needs ${need} MB of memory (plan options.${RUN_MEMORY_OPTION}); the largest connected lane that takes queue "${run.queue}" holds ${largest} MB`;
}
