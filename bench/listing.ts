/**
 * Listing at scale: what `GET /api/runs` costs with a million finished runs,
 * through a real `LanesServer` (port 0, `fetch` over loopback) on a SQLite
 * file and on a throwaway PostgreSQL (started as the tests start one).
 *
 * The runs are inserted in bulk with SQL, in one statement (a recursive CTE
 * on SQLite, `generate_series` on PostgreSQL), not through the API: filling
 * is not what is measured. Four queues in turn; 88 % success, 8 % failed,
 * 4 % crashed, independent of the queue. Four pages of 100, each requested
 * `samples` times in turn, p50/p99 per page:
 *   - first: the newest 100;
 *   - deep: 100 from the middle of the list, by the keyset cursor (`before`);
 *   - filtered: `state=failed&queue=manual`, the newest;
 *   - filtered deep: the same filter from the middle of the list;
 *   - dead letters: `dead_letter=true`, of which there are none (the worst
 *     case: without an index on `dead_letter` it read every run).
 *
 * `npx node bench/listing.ts` (or `BENCH_QUICK=1 …`, 20,000 runs) prints the table alone.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { DatabaseSync } from 'node:sqlite';
import pg from 'pg';
import pino from 'pino';
import { LanesServer } from '../src/server/index.ts';
import { startPostgres } from '../test/fixtures/postgres-cluster.ts';
import { percentile, table } from './stats.ts';

const TOKEN = 'bench-listing-token-0123456789abcdef';
const SECRET = 'bench-listing-secret-0123456789abcdef';
const PLAN = JSON.stringify({ starting_node_id: 'job-1', triggers: [], jobs: [{ id: 'job-1', body: 'fn(s => s)', adaptor: '@openfn/language-common@1.0.0' }], edges: [] });
const PAGE = 100;

export type ListingStore = 'sqlite' | 'postgres';
export const LISTING_PAGES = ['first', 'deep', 'filtered', 'filtered deep', 'dead letters'] as const;
export type ListingPage = (typeof LISTING_PAGES)[number];

export interface ListingResult {
  store: ListingStore;
  runs: number;
  fillSeconds: number;
  pages: Record<ListingPage, { p50: number; p99: number; rows: number }>;
}

/** The columns both stores fill, as SQL over a row number `n` (1…size), for SQLite and PostgreSQL alike. */
const COLUMNS = 'id, queue, priority, state, reason, attempts, max_attempts, plan, dataclip_id, run_timeout_ms, created_at, enqueued_at, available_at, claimed_at, started_at, finished_at';
function values(base: number): string {
  const state = `CASE WHEN n % 25 < 22 THEN 'success' WHEN n % 25 < 24 THEN 'failed' ELSE 'crashed' END`;
  const at = `${base} + n * 10`;
  return `'bench-run-' || n, CASE n % 4 WHEN 0 THEN 'fast_lane' WHEN 1 THEN 'manual' WHEN 2 THEN 'default' ELSE 'other' END, 0,
    ${state}, ${state}, 1, 1, '${PLAN}', 'bench-clip-' || n, 60000, ${at}, ${at}, ${at}, ${at} + 1, ${at} + 2, ${at} + 5`;
}

function fillSqlite(path: string, size: number, base: number): void {
  const db = new DatabaseSync(path);
  try {
    db.exec('PRAGMA journal_mode = WAL');
    db.prepare(
      `WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < ?) INSERT INTO runs (${COLUMNS}) SELECT ${values(base)} FROM g`,
    ).run(size);
    db.exec('ANALYZE');
  } finally {
    db.close();
  }
}

async function fillPostgres(url: string, size: number, base: number): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(`INSERT INTO runs (${COLUMNS}) SELECT ${values(base)} FROM generate_series(1, $1::bigint) AS n`, [size]);
    await client.query('ANALYZE runs');
  } finally {
    await client.end();
  }
}

async function page(server: LanesServer, query: string): Promise<{ ms: number; rows: number; cursor: string | undefined }> {
  const started = performance.now();
  const response = await fetch(`${server.url}/api/runs?limit=${PAGE}${query}`, { headers: { authorization: `Bearer ${TOKEN}` } });
  const body = (await response.json()) as { runs?: unknown[]; next_cursor?: string };
  const ms = performance.now() - started;
  if (response.status !== 200 || !Array.isArray(body.runs)) throw new Error(`GET /api/runs${query}: ${response.status}`);
  return { ms, rows: body.runs.length, cursor: body.next_cursor };
}

async function measure(store: ListingStore, dbPath: string, size: number, samples: number, fill: () => Promise<void>): Promise<ListingResult> {
  // Started first, so the schema is migrated; filled beside it, then measured.
  const server = await LanesServer.create({ port: 0, dbPath, secret: SECRET, apiTokens: [TOKEN], logger: pino({ level: process.env['BENCH_LOG'] ?? 'silent' }) });
  await server.start();
  try {
    const filling = performance.now();
    await fill();
    const fillSeconds = (performance.now() - filling) / 1000;
    // `seq` runs 1…size in insertion order: the middle is a cursor a client paging from the top would reach.
    const middle = String(Math.floor(size / 2));
    const queries: Record<ListingPage, string> = {
      first: '',
      deep: `&before=${middle}`,
      filtered: '&state=failed&queue=manual',
      'filtered deep': `&state=failed&queue=manual&before=${middle}`,
      'dead letters': '&dead_letter=true',
    };
    const times: Record<ListingPage, number[]> = { first: [], deep: [], filtered: [], 'filtered deep': [], 'dead letters': [] };
    const rows: Record<ListingPage, number> = { first: 0, deep: 0, filtered: 0, 'filtered deep': 0, 'dead letters': 0 };
    for (const name of LISTING_PAGES) await page(server, queries[name]); // warm up
    for (let index = 0; index < samples; index += 1) {
      for (const name of LISTING_PAGES) {
        const result = await page(server, queries[name]);
        times[name].push(result.ms);
        rows[name] = result.rows;
      }
    }
    const pages = Object.fromEntries(
      LISTING_PAGES.map((name) => [name, { p50: percentile(times[name], 50), p99: percentile(times[name], 99), rows: rows[name] }]),
    ) as ListingResult['pages'];
    return { store, runs: size, fillSeconds, pages };
  } finally {
    await server.stop();
  }
}

export async function runListingBench(options: { quick: boolean }): Promise<ListingResult[]> {
  const size = options.quick ? 20_000 : 1_000_000;
  const samples = options.quick ? 20 : 200;
  const base = Date.now() - size * 10 - 60_000;
  const results: ListingResult[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'lanes-bench-listing-'));
  try {
    const file = join(dir, 'lanes.db');
    results.push(await measure('sqlite', file, size, samples, async () => fillSqlite(file, size, base)));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const cluster = await startPostgres();
  try {
    const url = await cluster.createDatabase();
    results.push(await measure('postgres', url, size, samples, () => fillPostgres(url, size, base)));
  } finally {
    await cluster.stop();
  }
  return results;
}

const STORE_LABELS: Readonly<Record<ListingStore, string>> = { sqlite: 'SQLite file', postgres: 'PostgreSQL' };

export function formatListingBench(results: readonly ListingResult[]): string {
  const ms = (value: number) => `${value.toFixed(1)} ms`;
  return table(
    ['store', 'runs', ...LISTING_PAGES.map((name) => `${name} p50 / p99`)],
    results.map((result) => [
      STORE_LABELS[result.store],
      result.runs.toLocaleString('en-US'),
      ...LISTING_PAGES.map((name) => `${ms(result.pages[name].p50)} / ${ms(result.pages[name].p99)}`),
    ]),
  );
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const quick = (process.env['BENCH_QUICK'] ?? '') !== '' && process.env['BENCH_QUICK'] !== '0';
  const results = await runListingBench({ quick });
  for (const result of results) process.stdout.write(`${STORE_LABELS[result.store]}: ${result.runs} runs filled in ${result.fillSeconds.toFixed(1)} s; rows per page ${LISTING_PAGES.map((name) => result.pages[name].rows).join('/')}\n`);
  process.stdout.write(`${formatListingBench(results)}\n`);
}
