/**
 * What the worker accepts as a `fetch:plan` reply. Lightning always sends
 * every field; OpenFn's lightning-mock and OpenFn's own worker are more
 * lenient, and a Lanes worker accepts what OpenFn's worker accepts:
 *
 * - `triggers` and `edges` may be missing (no triggers, no edges);
 * - `dataclip_id` may be missing, null or empty: the run has no input to
 *   fetch and starts from `{}`;
 * - `starting_node_id` may be missing: the run starts at the first trigger,
 *   or the first job when there is none (the runtime's own default).
 *
 * Everything the engine relies on is then checked, the graph included: a plan
 * naming a job that is not in it would otherwise run partly (an edge to
 * nowhere is silently never followed) or fail deep in the runtime, and the
 * run must instead end `exception`/`PlanError` with the reason spelled out.
 */
import type { RunPlan } from '../protocol/messages.ts';

export type PlanReading = { ok: true; plan: RunPlan } | { ok: false; problem: string };

export function readPlanReply(reply: unknown): PlanReading {
  if (typeof reply !== 'object' || reply === null || Array.isArray(reply)) return { ok: false, problem: 'not an object' };
  const raw = reply as Record<string, unknown>;
  const plan: Record<string, unknown> = { ...raw };
  if (plan['triggers'] === undefined || plan['triggers'] === null) plan['triggers'] = [];
  if (plan['edges'] === undefined || plan['edges'] === null) plan['edges'] = [];
  if (plan['dataclip_id'] === undefined || plan['dataclip_id'] === null) plan['dataclip_id'] = '';
  const problem = planProblem(plan);
  if (problem !== null) return { ok: false, problem };
  const start = plan['starting_node_id'];
  if (start === undefined || start === null || start === '') {
    const first = (plan['triggers'] as Array<{ id: string }>)[0] ?? (plan['jobs'] as Array<{ id: string }>)[0];
    plan['starting_node_id'] = first?.id;
  }
  return { ok: true, plan: plan as unknown as RunPlan };
}

function planProblem(plan: Record<string, unknown>): string | null {
  if (typeof plan['id'] !== 'string') return 'id is not a string';
  if (!Array.isArray(plan['jobs']) || plan['jobs'].length === 0) return 'jobs is not a non-empty list';
  if (!Array.isArray(plan['edges'])) return 'edges is not a list';
  if (!Array.isArray(plan['triggers'])) return 'triggers is not a list';
  if (typeof plan['dataclip_id'] !== 'string') return 'dataclip_id is not a string';
  const jobIds = new Set<string>();
  for (const job of plan['jobs'] as unknown[]) {
    const candidate = job as Record<string, unknown> | null;
    if (candidate === null || typeof candidate !== 'object' || typeof candidate['id'] !== 'string' || typeof candidate['body'] !== 'string') {
      return 'a job has no id or body';
    }
    if (jobIds.has(candidate['id'])) return `job ${JSON.stringify(candidate['id'])} appears twice`;
    jobIds.add(candidate['id']);
  }
  const triggerIds = new Set<string>();
  for (const trigger of plan['triggers'] as unknown[]) {
    const candidate = trigger as Record<string, unknown> | null;
    if (candidate === null || typeof candidate !== 'object' || typeof candidate['id'] !== 'string') return 'a trigger has no id';
    triggerIds.add(candidate['id']);
  }
  for (const edge of plan['edges'] as unknown[]) {
    const candidate = edge as Record<string, unknown> | null;
    if (candidate === null || typeof candidate !== 'object' || typeof candidate['target_job_id'] !== 'string') return 'an edge has no target_job_id';
    const name = typeof candidate['id'] === 'string' ? `edge ${JSON.stringify(candidate['id'])}` : 'an edge';
    const target = candidate['target_job_id'];
    if (!jobIds.has(target)) return `${name} leads to job ${JSON.stringify(target)}, which is not in the plan`;
    const fromJob = candidate['source_job_id'];
    const fromTrigger = candidate['source_trigger_id'];
    if (fromJob !== undefined && fromJob !== null && (typeof fromJob !== 'string' || !jobIds.has(fromJob))) {
      return `${name} comes from job ${JSON.stringify(fromJob)}, which is not in the plan`;
    }
    if (fromTrigger !== undefined && fromTrigger !== null && (typeof fromTrigger !== 'string' || !triggerIds.has(fromTrigger))) {
      return `${name} comes from trigger ${JSON.stringify(fromTrigger)}, which is not in the plan`;
    }
  }
  const start = plan['starting_node_id'];
  if (start !== undefined && start !== null && start !== '' && (typeof start !== 'string' || (!jobIds.has(start) && !triggerIds.has(start)))) {
    return `starting_node_id ${JSON.stringify(start)} is not a job or trigger of the plan`;
  }
  if (plan['options'] !== undefined && plan['options'] !== null && typeof plan['options'] !== 'object') return 'options is not an object';
  return null;
}
