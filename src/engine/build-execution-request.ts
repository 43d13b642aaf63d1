/**
 * What a child is sent for a run: the plan's jobs with their resolved
 * adaptors and any compiled text already cached, the edges, the input and the
 * run's limits. The engine keeps `compileKeys` to cache the text a child
 * compiles for each job.
 */
import type { ResolvedAdaptor } from '../runtime/adaptor-repo.ts';
import type { ExecutionAdaptor, ExecutionRequest } from '../runtime/execution-request.ts';
import { CompiledJobs } from './compiled-jobs.ts';
import type { RunRequest } from './types.ts';

export interface BuiltExecutionRequest {
  execution: ExecutionRequest;
  /** Job id → the key its compiled text is cached under. */
  compileKeys: Map<string, string>;
}

export function buildExecutionRequest(request: RunRequest, adaptors: ReadonlyMap<string, ResolvedAdaptor>, compiledJobs: CompiledJobs): BuiltExecutionRequest {
  const { plan, limits } = request;
  const toExecution = (a: ResolvedAdaptor): ExecutionAdaptor => ({ specifier: a.specifier, name: a.name, version: a.version, entryPath: a.entryPath });
  const compileKeys = new Map<string, string>();
  const execution: ExecutionRequest = {
    runId: request.runId,
    jobs: plan.jobs.map((job) => {
      const adaptor = job.adaptor ? adaptors.get(job.adaptor) : undefined;
      const key = CompiledJobs.key(job.body, job.name ?? job.id, adaptor?.entryPath ?? null);
      compileKeys.set(job.id, key);
      const compiled = compiledJobs.get(key);
      const out: ExecutionRequest['jobs'][number] = {
        id: job.id,
        body: job.body,
        adaptor: adaptor ? toExecution(adaptor) : null,
        credentialId: job.credential_id ?? null,
      };
      if (job.name) out.name = job.name;
      if (compiled !== undefined) out.compiled = compiled;
      return out;
    }),
    triggerIds: plan.triggers.map((t) => t.id),
    edges: plan.edges,
    startingNodeId: plan.starting_node_id,
    input: request.input ?? {},
    payloadLimitMb: limits.payloadLimitMb,
    logPayloadLimitMb: limits.logPayloadLimitMb,
    statePropsToRemove: limits.statePropsToRemove,
  };
  if (plan.options?.job_log_level) execution.jobLogLevel = plan.options.job_log_level;
  if (plan.options?.sanitize) execution.sanitize = plan.options.sanitize;
  return { execution, compileKeys };
}
