/**
 * What the protocol's schemas cost on the claim path: the server's check of a
 * claim payload, the worker's reading of a claim reply (one run with a real
 * RS256 token) and of a five-job plan, in nanoseconds per value, each the
 * median of rounds in one process. Reported with the claim path; timings are
 * never asserted.
 */
import { performance } from 'node:perf_hooks';
import pino from 'pino';
import { generateRunKeyPair, readClaimPayload, signRunToken } from '../src/protocol/index.ts';
import { parseClaimedRuns } from '../src/worker/claim-reply.ts';
import { readPlanReply } from '../src/worker/plan-reply.ts';
import { percentile } from './stats.ts';

export interface SchemaCheckResult {
  claimPayloadNs: number;
  claimReplyNs: number;
  planNs: number;
}

/** A Lightning-shaped plan of five jobs in a chain behind a webhook trigger. */
export function benchPlan(): Record<string, unknown> {
  const jobs = Array.from({ length: 5 }, (_, i) => ({ id: `job-${i}`, name: `job ${i}`, adaptor: '@openfn/language-common@3.3.4', body: `fn(state => { state.data.step${i} = true; return state; });`, credential_id: null }));
  return {
    id: 'run-1',
    name: 'bench',
    project_id: 'p',
    dataclip_id: 'd-1',
    starting_node_id: 'trigger',
    triggers: [{ id: 'trigger', type: 'webhook' }],
    jobs,
    edges: [
      { id: 'e0', source_trigger_id: 'trigger', target_job_id: 'job-0', condition: 'always', enabled: true },
      ...jobs.slice(1).map((job, i) => ({ id: `e${i + 1}`, source_job_id: `job-${i}`, target_job_id: job.id, condition: 'on_job_success', enabled: true })),
    ],
    options: { run_timeout_ms: 300_000, run_memory_limit_mb: 256, output_dataclips: true },
  };
}

function nsPerCall(rounds: number, perRound: number, call: () => unknown): number {
  const samples: number[] = [];
  for (let round = 0; round < rounds; round += 1) {
    const started = performance.now();
    for (let i = 0; i < perRound; i += 1) call();
    samples.push(((performance.now() - started) * 1e6) / perRound);
  }
  return percentile(samples, 50);
}

export async function measureSchemaCheck(options: { quick: boolean }): Promise<SchemaCheckResult> {
  const keys = await generateRunKeyPair();
  const now = Math.floor(Date.now() / 1000);
  const token = signRunToken(keys.privateKey, 'run-1', { nowSeconds: now, expiresAtSeconds: now + 3600 });
  // Values as they come off the wire: parsed JSON.
  const claim = JSON.parse(JSON.stringify({ demand: 1, worker_name: 'bench-worker', queues: ['manual', '*'] }));
  const reply = JSON.parse(JSON.stringify({ runs: [{ id: '0d4c1d3e-5b0a-4c5e-9d0b-7c1f3a2b4e5f', token, memory_mb: 256 }] }));
  const plan = JSON.parse(JSON.stringify(benchPlan()));
  const logger = pino({ level: 'silent' });
  if (!readClaimPayload(claim).ok || parseClaimedRuns(reply, logger).length !== 1 || !readPlanReply(plan).ok) throw new Error('the bench values do not read');
  const rounds = options.quick ? 10 : 30;
  const perRound = 2000;
  return {
    claimPayloadNs: nsPerCall(rounds, perRound, () => readClaimPayload(claim)),
    claimReplyNs: nsPerCall(rounds, perRound, () => parseClaimedRuns(reply, logger)),
    planNs: nsPerCall(rounds, perRound, () => readPlanReply(plan)),
  };
}

export function formatSchemaCheck(result: SchemaCheckResult): string {
  return `Protocol schema checks (TypeBox, compiled), per value, p50: a claim payload ${result.claimPayloadNs.toFixed(0)} ns (server), a claim reply with one run ${result.claimReplyNs.toFixed(0)} ns and a five-job plan with its graph rules ${result.planNs.toFixed(0)} ns (worker).`;
}

if (import.meta.main) {
  const quick = process.env['BENCH_QUICK'] === '1' || process.argv.includes('--quick');
  process.stdout.write(`${formatSchemaCheck(await measureSchemaCheck({ quick }))}\n`);
}
