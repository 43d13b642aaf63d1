/**
 * The claim of a run just submitted to an idle server, with its run token
 * made ahead in idle time (with the run's id, run-token-pool.ts) and with
 * every token signed in the claim (`presignedTokens: 0`), side by side:
 * two servers on temp SQLite files in this thread, and in a worker thread of
 * its own (presigned-claim-client.ts) one phoenix client joined to each as a
 * one-lane worker that claims the moment `work-available` arrives, as a Lanes
 * worker does. Runs are submitted over HTTP one at a time, alternating
 * between the two servers, so drift in machine load hits both alike. The
 * figures are the server's part of the idle path (submit → claim reply),
 * with the client on its own event loop, as between two processes. Each
 * round follows a pause longer than the pool's refill delay, as runs reach an
 * idle server.
 *
 * `npx node bench/presigned-claim.ts` (or `BENCH_QUICK=1 …`) prints the table alone.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import pino from 'pino';
import { signWorkerToken } from '../src/protocol/index.ts';
import { LanesServer } from '../src/server/index.ts';
import { RUN_TOKEN_REFILL_IDLE_MS } from '../src/server/run-token-pool.ts';
import type { ClientInput, ClientOutput } from './presigned-claim-client.ts';
import { percentile, table } from './stats.ts';

const SECRET = 'bench-secret';
/** Pause before each round of runs: past the pool's refill delay, so an idle server has refilled. */
export const PRESIGNED_CLAIM_GAP_MS = RUN_TOKEN_REFILL_IDLE_MS + 20;
const API_TOKEN = 'bench-api-token-0123456789';

export interface PresignedClaimSide {
  /** Submit (the HTTP request sent) → the claim reply with the run received. */
  submitToClaimedMs: { p50: number; p99: number };
  /** The claim's round trip, push → reply. */
  claimRoundTripMs: { p50: number; p99: number };
  /** Claims whose token was signed ahead, of all. */
  signedAhead: number;
}

export interface PresignedClaimResult {
  runs: number;
  ahead: PresignedClaimSide;
  atClaim: PresignedClaimSide;
}

async function startServer(dir: string, name: string, presignedTokens: number): Promise<LanesServer> {
  const server = await LanesServer.create({
    port: 0,
    dbPath: join(dir, `${name}.db`),
    secret: SECRET,
    apiTokens: [API_TOKEN],
    logger: pino({ level: 'silent' }),
    workAvailableDebounceMs: 0,
    presignedTokens,
  });
  await server.start();
  return server;
}

async function signedAhead(server: LanesServer): Promise<number> {
  const { values } = await server.metrics.runTokens.get();
  return values.find((value) => value.labels['signed'] === 'ahead')?.value ?? 0;
}

function summary(samples: number[]): { p50: number; p99: number } {
  return { p50: percentile(samples, 50), p99: percentile(samples, 99) };
}

function runClient(input: ClientInput): Promise<ClientOutput> {
  const worker = new Worker(new URL('./presigned-claim-client.ts', import.meta.url), { workerData: input });
  return new Promise((resolve, reject) => {
    worker.once('message', (message: { ok: true; output: ClientOutput } | { ok: false; error: string }) => {
      void worker.terminate();
      if (message.ok) resolve(message.output);
      else reject(new Error(message.error));
    });
    worker.once('error', reject);
  });
}

export async function runPresignedClaimBench(options: { quick: boolean }): Promise<PresignedClaimResult> {
  const runs = options.quick ? 100 : 400;
  const dir = mkdtempSync(join(tmpdir(), 'lanes-presigned-'));
  const servers = [await startServer(dir, 'ahead', 32), await startServer(dir, 'at-claim', 0)];
  try {
    const sides = await Promise.all(servers.map(async (server, index) => ({ url: server.url, workerUrl: server.workerUrl, workerToken: await signWorkerToken(SECRET, `bench-${index}`) })));
    const warmup = 20;
    const output = await runClient({ sides, apiToken: API_TOKEN, warmup, runs, gapMs: PRESIGNED_CLAIM_GAP_MS });
    const side = async (index: number): Promise<PresignedClaimSide> => ({
      submitToClaimedMs: summary(output.submitMs[index] ?? []),
      claimRoundTripMs: summary(output.claimMs[index] ?? []),
      // The warm-up runs were signed ahead too.
      signedAhead: Math.max(0, (await signedAhead(servers[index]!)) - (index === 0 ? warmup : 0)),
    });
    return { runs, ahead: await side(0), atClaim: await side(1) };
  } finally {
    for (const server of servers) await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

export function formatPresignedClaim(result: PresignedClaimResult): string {
  const ms = (value: number) => `${value.toFixed(2)} ms`;
  const row = (name: string, side: PresignedClaimSide) => [
    name,
    ms(side.submitToClaimedMs.p50),
    ms(side.submitToClaimedMs.p99),
    ms(side.claimRoundTripMs.p50),
    ms(side.claimRoundTripMs.p99),
    `${side.signedAhead}/${result.runs}`,
  ];
  return table(
    ['tokens', 'submit → claimed p50', 'p99', 'claim round trip p50', 'p99', 'signed ahead'],
    [row('made ahead in idle time (default)', result.ahead), row('signed at the claim (`presignedTokens: 0`)', result.atClaim)],
  );
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const result = await runPresignedClaimBench({ quick: process.env['BENCH_QUICK'] === '1' });
  console.log(formatPresignedClaim(result));
}
