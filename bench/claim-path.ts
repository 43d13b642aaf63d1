/**
 * Claim path: how many `claim` pushes the server answers per second with
 * 4 workers × 4 lanes hammering it (issue 6), measured in-process on a real
 * `LanesServer` (port 0, a temp SQLite file, WAL) through real phoenix
 * clients over loopback WebSockets.
 *
 * Each lane is its own claim loop: `claim {demand: 1}` on its chain, the next
 * one as soon as the reply arrives. Two phases per trial, each `durationMs`:
 *   - empty: no runs, every claim answered `{runs: []}`;
 *   - handout: runs pre-loaded into the lanes' queues (straight into the
 *     store, so submission is not measured), every claim hands one out with
 *     its RS256 run token.
 * Clients and server share one process and one event loop, so the figures
 * are a floor for a server on its own core. Timings are never asserted.
 *
 * The same trial runs on three stores (`ClaimPathStore`): a SQLite file;
 * PostgreSQL with one server; PostgreSQL with two servers on one database,
 * half the workers on each (a throwaway cluster started for the bench, as
 * the tests start one).
 *
 * `npx node bench/claim-path.ts` (or `BENCH_QUICK=1 …`) prints the tables alone.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Socket } from 'phoenix';
import type { Channel } from 'phoenix';
import pino from 'pino';
import WebSocket from 'ws';
import { API_VERSION, WORKER_QUEUE_TOPIC, signWorkerToken } from '../src/protocol/index.ts';
import type { ClaimReply } from '../src/protocol/index.ts';
import { LanesServer } from '../src/server/index.ts';
import { startPostgres } from '../test/fixtures/postgres-cluster.ts';
import type { PostgresCluster } from '../test/fixtures/postgres-cluster.ts';
import { figure, formatFigure, percentile, table } from './stats.ts';
import { formatSchemaCheck, measureSchemaCheck } from './schema-check.ts';
import type { SchemaCheckResult } from './schema-check.ts';
import { formatTokenVerify, measureTokenVerify } from './token-verify.ts';
import type { TokenVerifyResult } from './token-verify.ts';
import type { Figure } from './stats.ts';

export const CLAIM_PATH_WORKERS = 4;
/** The lanes of every worker: strict, named-then-any, strict, any. */
export const CLAIM_PATH_CHAINS: readonly (readonly string[])[] = [['fast_lane'], ['manual', '*'], ['default'], ['*']];
/** Queues the handout phase fills, evenly: the three named ones and one only `*` lanes take. */
const HANDOUT_QUEUES = ['fast_lane', 'manual', 'default', 'other'] as const;
/** Runs pre-loaded per second of handout phase; above what one process can hand out, so the queues never run dry. */
const RUNS_PER_SECOND_LOADED = 4_000;

export interface ClaimPhase {
  durationMs: number;
  /** Claims answered per second (all lanes together). */
  claimsPerSecond: number;
  /** Runs handed out per second (0 in the empty phase). */
  runsPerSecond: number;
  /** Claim round trip, push → reply. */
  roundTripMs: { p50: number; p99: number };
  /** Claims answered with no run. */
  emptyReplies: number;
  /** Claims that did not get an ok reply (error or timeout). */
  failedClaims: number;
}

export interface ClaimPathTrial {
  empty: ClaimPhase;
  handout: ClaimPhase;
}

/** Where the trial's queue lives: a SQLite file, or PostgreSQL behind one or two servers. */
export type ClaimPathStore = 'sqlite' | 'postgres' | 'postgres-2-servers';

export const CLAIM_PATH_STORE_LABELS: Readonly<Record<ClaimPathStore, string>> = {
  sqlite: 'SQLite, 1 server',
  postgres: 'PostgreSQL, 1 server',
  'postgres-2-servers': 'PostgreSQL, 2 servers',
};

export interface ClaimPathResult {
  store: ClaimPathStore;
  quick: boolean;
  workers: number;
  lanesPerWorker: number;
  phaseDurationMs: number;
  /** Runs waiting when the handout phase starts (the claim query's cost grows with it). */
  preloadedRuns: number;
  trials: ClaimPathTrial[];
  /** Medians over trials, with the spread. */
  emptyClaimsPerSecond: Figure;
  emptyRoundTripP50Ms: Figure;
  emptyRoundTripP99Ms: Figure;
  handoutRunsPerSecond: Figure;
  handoutClaimsPerSecond: Figure;
  handoutRoundTripP50Ms: Figure;
  handoutRoundTripP99Ms: Figure;
  /** jose against a bare node:crypto check of a run token, side by side (token-verify.ts). */
  tokenVerify: TokenVerifyResult;
  /** What the protocol's schema checks cost per claim payload, claim reply and plan (schema-check.ts). */
  schemaCheck: SchemaCheckResult;
}

const TRIVIAL_PLAN = {
  starting_node_id: 'job-1',
  triggers: [],
  jobs: [{ id: 'job-1', body: 'fn(state => state)', adaptor: '@openfn/language-common@latest' }],
  edges: [],
};

/** Pre-loads runs; on PostgreSQL ten inserts at a time (one per pooled connection), as one transaction would take minutes. */
async function preload(server: LanesServer, perQueue: number): Promise<void> {
  const now = Date.now();
  const insert = (queue: string) => (tx: LanesServer['store']) =>
    tx.insertRun({ id: randomUUID(), queue, priority: 0, maxAttempts: 1, idempotencyKey: null, plan: TRIVIAL_PLAN, inputJson: '{}', runTimeoutMs: 300_000, now });
  if (server.store.kind === 'sqlite') {
    await server.store.transaction(async (tx) => {
      for (let index = 0; index < perQueue; index += 1) for (const queue of HANDOUT_QUEUES) await insert(queue)(tx);
    });
    return;
  }
  const pending = Array.from({ length: perQueue }, () => HANDOUT_QUEUES).flat();
  for (let index = 0; index < pending.length; index += 10) {
    await Promise.all(pending.slice(index, index + 10).map((queue) => insert(queue)(server.store)));
  }
}

function connect(server: LanesServer, token: string): Promise<Socket> {
  const socket = new Socket(server.workerUrl, {
    transport: WebSocket,
    params: { token, api_version: API_VERSION, worker_version: 'bench' },
    timeout: 30_000,
    reconnectAfterMs: () => 60_000,
  });
  return new Promise((resolve, reject) => {
    const openRef = socket.onOpen(() => {
      socket.off([openRef, errorRef]);
      resolve(socket);
    });
    const errorRef = socket.onError((error: unknown) => {
      socket.off([openRef, errorRef]);
      socket.disconnect();
      reject(new Error(`bench worker could not connect: ${String(error)}`));
    });
    socket.connect();
  });
}

function joinQueue(socket: Socket): Promise<Channel> {
  const lanes = Object.fromEntries(CLAIM_PATH_CHAINS.map((chain) => [chain.join('>'), 1]));
  const channel = socket.channel(WORKER_QUEUE_TOPIC, { capacity: CLAIM_PATH_CHAINS.length, queues: lanes });
  return new Promise((resolve, reject) => {
    channel
      .join()
      .receive('ok', () => resolve(channel))
      .receive('error', (response: unknown) => reject(new Error(`join refused: ${JSON.stringify(response)}`)))
      .receive('timeout', () => reject(new Error('join timed out')));
  });
}

type ClaimOutcome = { ok: true; runs: number } | { ok: false };

function claimOnce(channel: Channel, chain: readonly string[], workerName: string): Promise<ClaimOutcome> {
  return new Promise((resolve) => {
    channel
      .push('claim', { demand: 1, worker_name: workerName, queues: chain })
      .receive('ok', (reply: ClaimReply) => resolve({ ok: true, runs: reply.runs.length }))
      .receive('error', () => resolve({ ok: false }))
      .receive('timeout', () => resolve({ ok: false }));
  });
}

/** Every lane claims back-to-back until the deadline; returns the phase's figures. */
async function hammer(lanes: Array<{ channel: Channel; chain: readonly string[]; name: string }>, durationMs: number): Promise<ClaimPhase> {
  const roundTrips: number[] = [];
  let runs = 0;
  let emptyReplies = 0;
  let failedClaims = 0;
  const started = performance.now();
  const deadline = started + durationMs;
  await Promise.all(
    lanes.map(async (lane) => {
      while (performance.now() < deadline) {
        const sent = performance.now();
        const outcome = await claimOnce(lane.channel, lane.chain, lane.name);
        roundTrips.push(performance.now() - sent);
        if (!outcome.ok) failedClaims += 1;
        else if (outcome.runs === 0) emptyReplies += 1;
        else runs += outcome.runs;
      }
    }),
  );
  const elapsedS = (performance.now() - started) / 1000;
  return {
    durationMs: Math.round(elapsedS * 1000),
    claimsPerSecond: roundTrips.length / elapsedS,
    runsPerSecond: runs / elapsedS,
    roundTripMs: { p50: percentile(roundTrips, 50), p99: percentile(roundTrips, 99) },
    emptyReplies,
    failedClaims,
  };
}

function runsPerQueue(durationMs: number): number {
  return Math.ceil((RUNS_PER_SECOND_LOADED * durationMs) / 1000 / HANDOUT_QUEUES.length);
}

async function trial(durationMs: number, store: ClaimPathStore, cluster: PostgresCluster | undefined): Promise<ClaimPathTrial> {
  const dir = mkdtempSync(join(tmpdir(), 'lanes-claim-path-'));
  const secret = randomBytes(16).toString('hex');
  if (store !== 'sqlite' && cluster === undefined) throw new Error('a PostgreSQL trial needs a cluster');
  const dbPath = store === 'sqlite' || cluster === undefined ? join(dir, 'bench.db') : await cluster.createDatabase();
  const servers: LanesServer[] = [];
  const sockets: Socket[] = [];
  try {
    for (let index = 0; index < (store === 'postgres-2-servers' ? 2 : 1); index += 1) {
      const one = await LanesServer.create({ port: 0, dbPath, secret, logger: pino({ level: 'silent' }) });
      servers.push(one);
      await one.start();
    }
    const server = servers[0];
    if (server === undefined) throw new Error('no server');
    const lanes: Array<{ channel: Channel; chain: readonly string[]; name: string }> = [];
    for (let index = 0; index < CLAIM_PATH_WORKERS; index += 1) {
      // With two servers, workers alternate between them.
      const socket = await connect(servers[index % servers.length] ?? server, await signWorkerToken(secret, `bench-worker-${index}`));
      sockets.push(socket);
      const channel = await joinQueue(socket);
      for (const chain of CLAIM_PATH_CHAINS) lanes.push({ channel, chain, name: `bench-worker-${index}` });
    }
    const empty = await hammer(lanes, durationMs);

    await preload(server, runsPerQueue(durationMs));
    const handout = await hammer(lanes, durationMs);
    return { empty, handout };
  } finally {
    await Promise.all(sockets.map((socket) => new Promise<void>((resolve) => socket.disconnect(() => resolve(), 1000, 'bench done'))));
    for (const one of servers) await one.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Runs the claim-path benchmark: quick is one trial of 1.5 s per phase, full three trials of 10 s. */
export async function runClaimPathBench(options: { quick: boolean; store?: ClaimPathStore; cluster?: PostgresCluster }): Promise<ClaimPathResult> {
  const store = options.store ?? 'sqlite';
  const phaseDurationMs = options.quick ? 1_500 : 10_000;
  const trialCount = options.quick ? 1 : 3;
  const trials: ClaimPathTrial[] = [];
  for (let index = 0; index < trialCount; index += 1) trials.push(await trial(phaseDurationMs, store, options.cluster));
  const pick = (select: (trial: ClaimPathTrial) => number) => figure(trials.map(select));
  return {
    store,
    quick: options.quick,
    workers: CLAIM_PATH_WORKERS,
    lanesPerWorker: CLAIM_PATH_CHAINS.length,
    phaseDurationMs,
    preloadedRuns: runsPerQueue(phaseDurationMs) * HANDOUT_QUEUES.length,
    trials,
    emptyClaimsPerSecond: pick((t) => t.empty.claimsPerSecond),
    emptyRoundTripP50Ms: pick((t) => t.empty.roundTripMs.p50),
    emptyRoundTripP99Ms: pick((t) => t.empty.roundTripMs.p99),
    handoutRunsPerSecond: pick((t) => t.handout.runsPerSecond),
    handoutClaimsPerSecond: pick((t) => t.handout.claimsPerSecond),
    handoutRoundTripP50Ms: pick((t) => t.handout.roundTripMs.p50),
    handoutRoundTripP99Ms: pick((t) => t.handout.roundTripMs.p99),
    tokenVerify: await measureTokenVerify(options),
    schemaCheck: await measureSchemaCheck(options),
  };
}

/** The result as a Markdown table (median, with min–max over trials). */
export function formatClaimPath(result: ClaimPathResult): string {
  const header = ['phase', 'claims/s', 'runs handed out/s', 'claim round trip p50', 'claim round trip p99'];
  const rows = [
    ['empty queue', formatFigure(result.emptyClaimsPerSecond, '/s', 0), '–', formatFigure(result.emptyRoundTripP50Ms, 'ms', 2), formatFigure(result.emptyRoundTripP99Ms, 'ms', 2)],
    ['runs handed out', formatFigure(result.handoutClaimsPerSecond, '/s', 0), formatFigure(result.handoutRunsPerSecond, '/s', 0), formatFigure(result.handoutRoundTripP50Ms, 'ms', 2), formatFigure(result.handoutRoundTripP99Ms, 'ms', 2)],
  ];
  const trials = result.trials.length;
  const caption = `Claim path: ${result.workers} workers × ${result.lanesPerWorker} lanes (${CLAIM_PATH_CHAINS.map((c) => c.join('>')).join(', ')}), demand 1 back-to-back, ${result.phaseDurationMs / 1000} s per phase, ${trials} trial${trials === 1 ? '' : 's'}, ${result.preloadedRuns} runs waiting at the start of the handout phase; server and clients in one process.`;
  return `${caption}\n\n${table(header, rows)}\n\n${formatTokenVerify(result.tokenVerify)}\n\n${formatSchemaCheck(result.schemaCheck)}`;
}

/** The stores side by side, one row each (medians over trials). */
export function formatClaimPathByStore(results: readonly ClaimPathResult[]): string {
  const header = ['store', 'claims/s (empty queue)', 'runs handed out/s', 'claims/s (handing out)', 'round trip p50 / p99 (empty)', 'round trip p50 / p99 (handing out)'];
  const rows = results.map((r) => [
    CLAIM_PATH_STORE_LABELS[r.store],
    formatFigure(r.emptyClaimsPerSecond, '/s', 0),
    formatFigure(r.handoutRunsPerSecond, '/s', 0),
    formatFigure(r.handoutClaimsPerSecond, '/s', 0),
    `${formatFigure(r.emptyRoundTripP50Ms, 'ms', 2)} / ${formatFigure(r.emptyRoundTripP99Ms, 'ms', 2)}`,
    `${formatFigure(r.handoutRoundTripP50Ms, 'ms', 2)} / ${formatFigure(r.handoutRoundTripP99Ms, 'ms', 2)}`,
  ]);
  return table(header, rows);
}

/** SQLite, PostgreSQL with one server and with two, in one run (PostgreSQL on a throwaway cluster). */
export async function runClaimPathByStore(options: { quick: boolean }): Promise<ClaimPathResult[]> {
  const results = [await runClaimPathBench({ quick: options.quick, store: 'sqlite' })];
  const cluster = await startPostgres();
  try {
    results.push(await runClaimPathBench({ quick: options.quick, store: 'postgres', cluster }));
    results.push(await runClaimPathBench({ quick: options.quick, store: 'postgres-2-servers', cluster }));
  } finally {
    await cluster.stop();
  }
  return results;
}

if (import.meta.main) {
  const quick = process.env['BENCH_QUICK'] === '1' || process.argv.includes('--quick');
  const results = await runClaimPathByStore({ quick });
  for (const result of results) process.stdout.write(`${CLAIM_PATH_STORE_LABELS[result.store]}\n${formatClaimPath(result)}\n\n`);
  process.stdout.write(`${formatClaimPathByStore(results)}\n`);
  const failed = results.reduce((sum, r) => sum + r.trials.reduce((s, t) => s + t.empty.failedClaims + t.handout.failedClaims, 0), 0);
  if (failed > 0) process.stdout.write(`warning: ${failed} claims were not answered ok\n`);
}
