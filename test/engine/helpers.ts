/**
 * Shared setup for engine tests: a temp repo dir, a silent logger, the local
 * adaptor fixture, and plans/requests in Lightning's shape.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ExecutionContext } from 'ava';
import { pino } from 'pino';
import { buildExecutionRequest } from '../../src/engine/build-execution-request.ts';
import { CompiledJobs } from '../../src/engine/compiled-jobs.ts';
import { Engine } from '../../src/engine/index.ts';
import type { EngineEvent, EngineOptions, RunLimits, RunRequest } from '../../src/engine/index.ts';
import type { PlanEdge, PlanJob, RunPlan } from '../../src/protocol/index.ts';
import type { ExecutionRequest } from '../../src/runtime/execution-request.ts';

export const FIXTURE_DIR = fileURLToPath(new URL('../fixtures/adaptor/', import.meta.url));
export const FIXTURE = '@openfn/language-lanesfixture@1.0.0';

export const silentLogger = pino({ level: 'silent' });

export async function tempDir(t: ExecutionContext, prefix = 'lanes-engine-'): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), prefix));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** An engine on a temp repo with the fixture adaptor available from disk; stopped at teardown. */
export async function startEngine(t: ExecutionContext, options: Partial<EngineOptions> = {}): Promise<Engine> {
  const repoDir = options.repoDir ?? (await tempDir(t));
  const engine = await Engine.create({
    poolSize: 1,
    runMemoryLimitMb: 128,
    logger: silentLogger,
    localAdaptors: { '@openfn/language-lanesfixture': FIXTURE_DIR },
    ...options,
    repoDir,
  });
  t.teardown(() => engine.stop());
  return engine;
}

export function job(id: string, body: string, extra: Partial<PlanJob> = {}): PlanJob {
  return { id, body, adaptor: FIXTURE, ...extra };
}

/** A plan starting at a webhook trigger `t`, whose jobs run in the given edges (or a chain). */
export function plan(jobs: PlanJob[], edges?: PlanEdge[], options?: RunPlan['options']): RunPlan {
  const chain: PlanEdge[] = [];
  const first = jobs[0];
  if (first) chain.push({ id: 'e-t', source_trigger_id: 't', target_job_id: first.id, condition: 'always' });
  for (let i = 1; i < jobs.length; i++) {
    chain.push({ id: `e-${i}`, source_job_id: (jobs[i - 1] as PlanJob).id, target_job_id: (jobs[i] as PlanJob).id, condition: 'on_job_success' });
  }
  const out: RunPlan = { id: 'plan-1', dataclip_id: 'dc-1', starting_node_id: 't', triggers: [{ id: 't', type: 'webhook' }], jobs, edges: edges ?? chain };
  if (options) out.options = options;
  return out;
}

export const defaultLimits: RunLimits = {
  timeoutMs: 20_000,
  memoryLimitMb: 128,
  payloadLimitMb: 10,
  logPayloadLimitMb: 1,
  statePropsToRemove: ['configuration', 'response'],
};

let runCounter = 0;

export interface Recorded {
  request: RunRequest;
  events: EngineEvent[];
}

export function request(runPlan: RunPlan, extra: Partial<Omit<RunRequest, 'limits'>> & { limits?: Partial<RunLimits> } = {}): Recorded {
  const events: EngineEvent[] = [];
  const { limits, ...rest } = extra;
  const req: RunRequest = {
    runId: `run-${++runCounter}`,
    plan: runPlan,
    input: { data: {} },
    fetchCredential: async (id) => {
      throw new Error(`no credential ${id}`);
    },
    onEvent: (e) => events.push(e),
    ...rest,
    limits: { ...defaultLimits, ...limits },
  };
  return { request: req, events };
}

export function logsOf(events: EngineEvent[], source = 'JOB'): unknown[][] {
  return events.flatMap((e) => (e.type === 'log' && e.source === source ? [e.message] : []));
}

export function stepCompletes(events: EngineEvent[]) {
  return events.flatMap((e) => (e.type === 'step-complete' ? [e] : []));
}

/** What a child is sent for a run whose one job never ends (no adaptor): for tests that drive a child directly. */
export function hangingExecution(): { runId: string; execution: ExecutionRequest } {
  const req = request(plan([job('a', '(s) => new Promise(() => {})', { adaptor: undefined })])).request;
  return { runId: req.runId, execution: buildExecutionRequest(req, new Map(), new CompiledJobs()).execution };
}
