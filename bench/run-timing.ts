/**
 * Submits runs and reads back when each started and finished, from the
 * server's record. Submit times are taken on this process's clock just before
 * the request; the server runs on the same machine and clock.
 */
import type { LanesApiClient, RunRecord } from '../src/client/lanes-api-client.ts';

export interface TimedRun {
  id: string;
  submittedAtMs: number;
  run?: RunRecord;
}

export async function submitTimed(client: LanesApiClient, queue: string, plan: Record<string, unknown>): Promise<TimedRun> {
  const submittedAtMs = Date.now();
  const { id } = await client.submitRun({ queue, plan, input: { data: {} } });
  return { id, submittedAtMs };
}

/**
 * Waits until every run has ended, reading them in bulk (a few requests per
 * poll, whatever the number of runs) so that polling does not load the server
 * it measures. Times come from the server's record, not from the poll.
 */
export async function waitAll(client: LanesApiClient, runs: TimedRun[], timeoutMs: number, pollMs = 100): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const pending = new Map(runs.map((timed) => [timed.id, timed]));
  while (pending.size > 0) {
    if (Date.now() > deadline) throw new Error(`${pending.size} runs did not finish within ${timeoutMs} ms`);
    for (const state of TERMINAL) {
      const listed = (await client.listRuns({ state, limit: '1000' })) as { runs: RunRecord[] };
      for (const summary of listed.runs) {
        const timed = pending.get(summary.id);
        if (!timed) continue;
        timed.run = summary;
        pending.delete(summary.id);
      }
    }
    if (pending.size > 0) await new Promise((resolve) => setTimeout(resolve, pollMs));
  }
}

const TERMINAL = ['success', 'failed', 'crashed', 'killed', 'cancelled', 'exception', 'lost'] as const;

/** submit → run:start in ms (from the server's started_at). */
export function startLatencyMs(timed: TimedRun): number {
  const started = timed.run?.started_at;
  return started ? Date.parse(started) - timed.submittedAtMs : Number.NaN;
}

/** submit → the first line of job code in ms, as the job stamped it into its state (`trivialPlan`). */
export function firstLineLatencyMs(timed: TimedRun): number {
  const state = timed.run?.final_state as { data?: { firstLineAt?: unknown } } | null | undefined;
  const at = state?.data?.firstLineAt;
  return typeof at === 'number' ? at - timed.submittedAtMs : Number.NaN;
}

/**
 * The server's `created_at` → the first line of job code in ms: the measure
 * issue #14 stated its goals in. It leaves out what `firstLineLatencyMs`
 * includes before the server stamps the run: the client's request on its
 * way and the server reading and checking its body (about 1.5 ms idle).
 */
export function createdToFirstLineMs(timed: TimedRun): number {
  const state = timed.run?.final_state as { data?: { firstLineAt?: unknown } } | null | undefined;
  const at = state?.data?.firstLineAt;
  const created = timed.run?.created_at;
  return typeof at === 'number' && typeof created === 'string' ? at - Date.parse(created) : Number.NaN;
}

/** Reads each run's full record (the list view has no final state). */
export async function readFinalStates(client: LanesApiClient, runs: TimedRun[]): Promise<void> {
  for (const timed of runs) timed.run = await client.getRun(timed.id);
}

/** submit → run:complete in ms (from the server's finished_at). */
export function completeLatencyMs(timed: TimedRun): number {
  const finished = timed.run?.finished_at;
  return finished ? Date.parse(finished) - timed.submittedAtMs : Number.NaN;
}

export function failures(runs: readonly TimedRun[]): string[] {
  return runs.filter((timed) => timed.run?.state !== 'success').map((timed) => `${timed.id}: ${timed.run?.state} ${timed.run?.error_type ?? ''} ${timed.run?.error_message ?? ''}`);
}
