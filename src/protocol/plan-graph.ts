/**
 * The rules of a plan that its schema cannot say: node ids are unique, every
 * edge joins nodes of the plan and has exactly one source, the starting node
 * is one of them. The server refuses a submission that breaks them (422) and
 * the worker ends a run whose plan breaks them (`exception`, `PlanError`):
 * a plan naming a job it lacks would otherwise run partly (an edge to nowhere
 * is silently never followed) or fail deep in the runtime.
 */
import type { PlanBody } from './plan-schema.ts';
import type { FieldProblem } from './wire-shape.ts';

const quote = (value: string): string => JSON.stringify(value.length > 80 ? `${value.slice(0, 77)}...` : value);

const given = (value: string | null | undefined): value is string => value !== undefined && value !== null && value !== '';

/** The first graph problem of a plan that already fits its schema, with the field under `prefix` (`plan` for a submission). */
export function planGraphProblem(plan: PlanBody, prefix = ''): FieldProblem | undefined {
  const at = (path: string): string => (prefix === '' ? path : `${prefix}.${path}`);
  const jobIds = new Set<string>();
  for (const [index, job] of plan.jobs.entries()) {
    if (jobIds.has(job.id)) return { field: at(`jobs[${index}].id`), message: `is used by another job: ${quote(job.id)}` };
    jobIds.add(job.id);
  }
  const triggerIds = new Set<string>();
  for (const [index, trigger] of (plan.triggers ?? []).entries()) {
    if (triggerIds.has(trigger.id) || jobIds.has(trigger.id)) return { field: at(`triggers[${index}].id`), message: `is used by another node: ${quote(trigger.id)}` };
    triggerIds.add(trigger.id);
  }
  for (const [index, edge] of (plan.edges ?? []).entries()) {
    const field = at(`edges[${index}]`);
    if (!jobIds.has(edge.target_job_id)) return { field: `${field}.target_job_id`, message: `names job ${quote(edge.target_job_id)}, which is not in the plan` };
    const fromJob = edge.source_job_id;
    const fromTrigger = edge.source_trigger_id;
    if (given(fromJob) === given(fromTrigger)) return { field, message: 'needs exactly one of source_job_id and source_trigger_id' };
    if (given(fromJob) && !jobIds.has(fromJob)) return { field: `${field}.source_job_id`, message: `names job ${quote(fromJob)}, which is not in the plan` };
    if (given(fromTrigger) && !triggerIds.has(fromTrigger)) {
      return { field: `${field}.source_trigger_id`, message: `names trigger ${quote(fromTrigger)}, which is not in the plan` };
    }
  }
  const start = plan.starting_node_id;
  if (given(start) && !jobIds.has(start) && !triggerIds.has(start)) {
    return { field: at('starting_node_id'), message: `names ${quote(start)}, which is not a job or trigger of the plan` };
  }
  return undefined;
}
