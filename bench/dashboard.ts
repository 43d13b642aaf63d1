/**
 * Dashboard: what an open dashboard costs the server. While at least one
 * browser follows `GET /api/events`, the server builds the snapshot every
 * 500 ms (`buildDashboardSnapshot`: attempts in flight and the newest 500 of
 * the last 5 minutes, runs ended in the last minute, queue stats), whatever
 * the number of open dashboards. Measured in-process on a temp SQLite file
 * holding `size` runs, all ended within the timeline's window (the worst
 * case for its reads), with a worker of 4 lanes and 16 runs in flight.
 * Side by side, `queueStats()` alone: what `GET /api/queues` (and the
 * snapshot's queue part, a count over every run) costs on the same store.
 *
 * `npx node bench/dashboard.ts` (or `BENCH_QUICK=1 …`) prints the table alone.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pino } from 'pino';
import { buildDashboardSnapshot } from '../src/server/dashboard-snapshot.ts';
import { DEFAULT_FEED_INTERVAL_MS } from '../src/server/dashboard-feed.ts';
import { openStore } from '../src/server/store/open-store.ts';
import type { Store } from '../src/server/store/store.ts';
import { WorkerRegistry } from '../src/server/worker-registry.ts';
import { percentile, table } from './stats.ts';

const PLAN = { starting_node_id: 'job-1', triggers: [], jobs: [{ id: 'job-1', body: 'fn(s => s)', adaptor: '@openfn/language-common@1.0.0' }], edges: [] };
const CHAINS = ['fast_lane', 'manual>*', 'default', '*'];
const QUEUES = ['fast_lane', 'manual', 'default', 'other'];

export interface DashboardBenchRow {
  runs: number;
  builds: number;
  snapshotMs: { p50: number; p90: number };
  queueStatsMs: { p50: number; p90: number };
  snapshotBytes: number;
  /** Share of one core the feed takes at its 500 ms interval (snapshot p50 / interval). */
  coreShare: number;
}

async function fill(store: Store, size: number, now: number): Promise<void> {
  const windowMs = 4 * 60_000;
  for (let index = 0; index < size; index += 1) {
    const at = now - windowMs + Math.floor((index / size) * windowMs);
    const queue = QUEUES[index % QUEUES.length] as string;
    const run = await store.insertRun({ id: randomUUID(), queue, priority: 0, maxAttempts: 1, idempotencyKey: null, plan: PLAN, inputJson: '{}', runTimeoutMs: 60_000, now: at });
    const chain = queue === 'other' ? ['*'] : [queue];
    await store.claim({ chain, demand: 1, workerId: 'bench-worker', workerName: 'bench', now: at + 1, graceMs: 1_000, heartbeatLeaseMs: null });
    await store.finishRun(run.id, 1, { state: 'success', reason: 'success', errorType: null, errorMessage: null, now: at + 50 }, false);
  }
  // 16 in flight: the busy slots the lanes view draws.
  for (let index = 0; index < 16; index += 1) {
    await store.insertRun({ id: randomUUID(), queue: 'manual', priority: 0, maxAttempts: 1, idempotencyKey: null, plan: PLAN, inputJson: '{}', runTimeoutMs: 60_000, now });
  }
  await store.claim({ chain: ['manual', '*'], demand: 16, workerId: 'bench-worker', workerName: 'bench', now: now + 1, graceMs: 1_000, heartbeatLeaseMs: null });
}

async function time(builds: number, fn: () => Promise<unknown>): Promise<{ p50: number; p90: number }> {
  const samples: number[] = [];
  for (let index = 0; index < builds; index += 1) {
    const started = performance.now();
    await fn();
    samples.push(performance.now() - started);
  }
  return { p50: percentile(samples, 50), p90: percentile(samples, 90) };
}

export async function runDashboardBench(options: { quick: boolean }): Promise<DashboardBenchRow[]> {
  const sizes = options.quick ? [1_000, 5_000] : [1_000, 10_000, 30_000];
  const builds = options.quick ? 20 : 60;
  const rows: DashboardBenchRow[] = [];
  for (const size of sizes) {
    const dir = mkdtempSync(join(tmpdir(), 'lanes-bench-dashboard-'));
    const store = await openStore(join(dir, 'lanes.db'), pino({ level: 'silent' }));
    try {
      const now = Date.now();
      await fill(store, size, now);
      const registry = new WorkerRegistry();
      registry.add({
        connectionId: 'c1', workerId: 'bench-worker', name: 'bench', capacity: 19, lanes: Object.fromEntries(CHAINS.map((chain, index) => [chain, index === 1 ? 16 : 1])),
        laneList: CHAINS.map((chain, index) => ({ chain, slots: index === 1 ? 16 : 1 })),
        connectedAt: now, lastSeenAt: now, heartbeats: true, cancels: true, plans: true, lanesMemoryMb: null, memoryCeilingMb: null,
        pushWorkAvailable: () => undefined, pushRunCancel: () => undefined, serveHeldClaims: async () => true, heldClaimsFor: () => 0, handOffHeld: async () => undefined,
      });
      // Warm the statement cache, as a feed that has been running has.
      const snapshot = await buildDashboardSnapshot(store, registry, Date.now());
      const snapshotMs = await time(builds, () => buildDashboardSnapshot(store, registry, Date.now()));
      const queueStatsMs = await time(builds, () => store.queueStats());
      rows.push({ runs: size, builds, snapshotMs, queueStatsMs, snapshotBytes: Buffer.byteLength(JSON.stringify(snapshot)), coreShare: snapshotMs.p50 / DEFAULT_FEED_INTERVAL_MS });
    } finally {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  }
  return rows;
}

export function formatDashboardBench(rows: readonly DashboardBenchRow[]): string {
  const ms = (value: number) => `${value.toFixed(2)} ms`;
  return table(
    ['runs stored', 'snapshot build p50 (p90)', 'queueStats alone p50 (p90)', 'snapshot size', 'one core at 500 ms'],
    rows.map((row) => [
      String(row.runs),
      `${ms(row.snapshotMs.p50)} (${ms(row.snapshotMs.p90)})`,
      `${ms(row.queueStatsMs.p50)} (${ms(row.queueStatsMs.p90)})`,
      `${(row.snapshotBytes / 1024).toFixed(0)} KB`,
      `${(row.coreShare * 100).toFixed(1)} %`,
    ]),
  );
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const quick = (process.env['BENCH_QUICK'] ?? '') !== '' && process.env['BENCH_QUICK'] !== '0';
  process.stdout.write(`${formatDashboardBench(await runDashboardBench({ quick }))}\n`);
}
