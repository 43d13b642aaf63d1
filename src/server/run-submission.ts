/**
 * Validation of `POST /api/runs` bodies. The first problem found is returned
 * as `{field, message}` (a dotted path such as `plan.jobs[0].adaptor`), and
 * nothing is stored unless the whole body is valid.
 */
import { MAX_RUN_MEMORY_MB, QUEUE_NAME_PATTERN } from '../protocol/index.ts';
import type { PlanEdge, PlanJob, PlanOptions, PlanTrigger, RunPlan } from '../protocol/index.ts';
import { badQueueName, isNonEmptyString, isRecord } from './field-errors.ts';

export interface Submission {
  queue: string;
  priority: number;
  maxAttempts: number;
  idempotencyKey: string | null;
  plan: Omit<RunPlan, 'id' | 'dataclip_id'>;
  inputJson: string;
  /** Epoch ms before which the run is not claimable (`not_before`), or null. */
  notBefore: number | null;
}

export interface SubmissionProblem {
  field: string;
  message: string;
}

export const DEFAULT_QUEUE = 'default';
/** The fields of a submission body: anything else is refused, so a misspelt `max_attempt` is not silently ignored. */
export const SUBMISSION_FIELDS: readonly string[] = Object.freeze(['queue', 'plan', 'input', 'priority', 'idempotency_key', 'max_attempts', 'not_before']);
/** How far ahead `not_before` may be: a year. */
export const MAX_DELAY_MS = 366 * 24 * 60 * 60 * 1000;
export const MAX_PRIORITY = 1_000_000;
export const MAX_ATTEMPTS_LIMIT = 100;

class Invalid extends Error {
  readonly field: string;
  constructor(field: string, message: string) {
    super(message);
    this.field = field;
  }
}

function fail(field: string, message: string): never {
  throw new Invalid(field, message);
}

function optionalString(value: unknown, field: string): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') fail(field, 'must be a string');
  return value;
}

function requiredString(value: unknown, field: string): string {
  if (!isNonEmptyString(value)) fail(field, 'must be a non-empty string');
  return value;
}

function integer(value: unknown, field: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) fail(field, `must be an integer from ${min} to ${max}`);
  return value;
}

const NUMERIC_OPTIONS = ['run_timeout_ms', 'run_memory_limit_mb', 'payload_limit_mb', 'log_payload_limit_mb'] as const;

function parseOptions(value: unknown): PlanOptions | undefined {
  if (value === undefined || value === null) return undefined;
  if (!isRecord(value)) fail('plan.options', 'must be an object');
  const options: PlanOptions = {};
  for (const name of NUMERIC_OPTIONS) {
    const option = value[name];
    if (option === undefined) continue;
    if (typeof option !== 'number' || !Number.isFinite(option) || option <= 0) fail(`plan.options.${name}`, 'must be a positive number');
    if (name === 'run_memory_limit_mb' && option > MAX_RUN_MEMORY_MB) fail(`plan.options.${name}`, `must be at most ${MAX_RUN_MEMORY_MB} (MB)`);
    options[name] = option;
  }
  if (value['output_dataclips'] !== undefined) {
    if (typeof value['output_dataclips'] !== 'boolean') fail('plan.options.output_dataclips', 'must be a boolean');
    options.output_dataclips = value['output_dataclips'];
  }
  const level = optionalString(value['job_log_level'], 'plan.options.job_log_level');
  if (level !== undefined) options.job_log_level = level;
  const sanitize = optionalString(value['sanitize'], 'plan.options.sanitize');
  if (sanitize !== undefined) options.sanitize = sanitize;
  return options;
}

function parsePlan(value: unknown): Omit<RunPlan, 'id' | 'dataclip_id'> {
  if (!isRecord(value)) fail('plan', 'must be an object');
  if (!Array.isArray(value['jobs']) || value['jobs'].length === 0) fail('plan.jobs', 'must be a non-empty list');
  const jobIds = new Set<string>();
  const jobs: PlanJob[] = value['jobs'].map((raw: unknown, index: number) => {
    const field = `plan.jobs[${index}]`;
    if (!isRecord(raw)) fail(field, 'must be an object');
    const id = requiredString(raw['id'], `${field}.id`);
    if (jobIds.has(id)) fail(`${field}.id`, 'is used by another job');
    jobIds.add(id);
    if (typeof raw['body'] !== 'string') fail(`${field}.body`, 'must be a string');
    const job: PlanJob = { id, body: raw['body'], adaptor: requiredString(raw['adaptor'], `${field}.adaptor`) };
    const name = optionalString(raw['name'], `${field}.name`);
    if (name !== undefined) job.name = name;
    const credential = optionalString(raw['credential_id'], `${field}.credential_id`);
    if (credential !== undefined) job.credential_id = credential;
    return job;
  });
  const rawTriggers = value['triggers'] ?? [];
  if (!Array.isArray(rawTriggers)) fail('plan.triggers', 'must be a list');
  const triggerIds = new Set<string>();
  const triggers: PlanTrigger[] = rawTriggers.map((raw: unknown, index: number) => {
    const field = `plan.triggers[${index}]`;
    if (!isRecord(raw)) fail(field, 'must be an object');
    const id = requiredString(raw['id'], `${field}.id`);
    if (triggerIds.has(id) || jobIds.has(id)) fail(`${field}.id`, 'is used by another node');
    triggerIds.add(id);
    const trigger: PlanTrigger = { id };
    const type = optionalString(raw['type'], `${field}.type`);
    if (type !== undefined) trigger.type = type;
    return trigger;
  });
  const rawEdges = value['edges'] ?? [];
  if (!Array.isArray(rawEdges)) fail('plan.edges', 'must be a list');
  const edges: PlanEdge[] = rawEdges.map((raw: unknown, index: number) => {
    const field = `plan.edges[${index}]`;
    if (!isRecord(raw)) fail(field, 'must be an object');
    const edge: PlanEdge = { id: requiredString(raw['id'], `${field}.id`), target_job_id: requiredString(raw['target_job_id'], `${field}.target_job_id`) };
    if (!jobIds.has(edge.target_job_id)) fail(`${field}.target_job_id`, 'is not a job of the plan');
    const sourceJob = optionalString(raw['source_job_id'], `${field}.source_job_id`);
    const sourceTrigger = optionalString(raw['source_trigger_id'], `${field}.source_trigger_id`);
    if ((sourceJob === undefined) === (sourceTrigger === undefined)) fail(field, 'needs exactly one of source_job_id and source_trigger_id');
    if (sourceJob !== undefined) {
      if (!jobIds.has(sourceJob)) fail(`${field}.source_job_id`, 'is not a job of the plan');
      edge.source_job_id = sourceJob;
    }
    if (sourceTrigger !== undefined) {
      if (!triggerIds.has(sourceTrigger)) fail(`${field}.source_trigger_id`, 'is not a trigger of the plan');
      edge.source_trigger_id = sourceTrigger;
    }
    const condition = optionalString(raw['condition'], `${field}.condition`);
    if (condition !== undefined) edge.condition = condition;
    if (raw['enabled'] !== undefined) {
      if (typeof raw['enabled'] !== 'boolean') fail(`${field}.enabled`, 'must be a boolean');
      edge.enabled = raw['enabled'];
    }
    return edge;
  });
  const firstTrigger = triggers[0];
  const firstJob = jobs[0];
  let startingNode = optionalString(value['starting_node_id'], 'plan.starting_node_id');
  if (startingNode !== undefined && !jobIds.has(startingNode) && !triggerIds.has(startingNode)) {
    fail('plan.starting_node_id', 'is not a node of the plan');
  }
  startingNode ??= firstTrigger?.id ?? firstJob?.id ?? '';
  const plan: Omit<RunPlan, 'id' | 'dataclip_id'> = { starting_node_id: startingNode, triggers, jobs, edges };
  const name = optionalString(value['name'], 'plan.name');
  if (name !== undefined) plan.name = name;
  const project = optionalString(value['project_id'], 'plan.project_id');
  if (project !== undefined) plan.project_id = project;
  const options = parseOptions(value['options']);
  if (options !== undefined) plan.options = options;
  return plan;
}

/** `not_before`: an ISO 8601 time with a zone, at most `MAX_DELAY_MS` ahead; a past time means now. */
function parseNotBefore(value: unknown, now: number): number | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== 'string' || value.length > 64 || !/^\d{4}-\d{2}-\d{2}T[\d:.]+(Z|[+-]\d{2}:\d{2})$/.test(value)) {
    fail('not_before', 'must be an ISO 8601 time with a zone, such as 2026-12-01T09:30:00Z');
  }
  const at = Date.parse(value);
  if (!Number.isFinite(at)) fail('not_before', 'is not a valid time');
  if (at - now > MAX_DELAY_MS) fail('not_before', 'must be at most 366 days ahead');
  return Math.max(at, now);
}

/** Validates a submission body; `defaultMaxAttempts` applies when the body names none. */
export function parseSubmission(body: unknown, defaultMaxAttempts: number, now = Date.now()): { ok: true; submission: Submission } | { ok: false; problem: SubmissionProblem } {
  try {
    if (!isRecord(body)) fail('body', 'must be a JSON object');
    const unknown = Object.keys(body).find((key) => !SUBMISSION_FIELDS.includes(key));
    if (unknown !== undefined) fail(unknown, `is not a field of a submission (${SUBMISSION_FIELDS.join(', ')})`);
    const queue = body['queue'] ?? DEFAULT_QUEUE;
    if (typeof queue !== 'string' || !QUEUE_NAME_PATTERN.test(queue)) fail('queue', badQueueName(queue));
    const priority = body['priority'] === undefined ? 0 : integer(body['priority'], 'priority', -MAX_PRIORITY, MAX_PRIORITY);
    const maxAttempts = body['max_attempts'] === undefined ? defaultMaxAttempts : integer(body['max_attempts'], 'max_attempts', 1, MAX_ATTEMPTS_LIMIT);
    let idempotencyKey: string | null = null;
    if (body['idempotency_key'] !== undefined && body['idempotency_key'] !== null) {
      const key = body['idempotency_key'];
      if (!isNonEmptyString(key) || key.length > 255) fail('idempotency_key', 'must be a string of 1 to 255 characters');
      idempotencyKey = key;
    }
    const plan = parsePlan(body['plan']);
    const input = body['input'] ?? {};
    if (!isRecord(input)) fail('input', 'must be a JSON object');
    const notBefore = parseNotBefore(body['not_before'], now);
    return { ok: true, submission: { queue, priority, maxAttempts, idempotencyKey, plan, inputJson: JSON.stringify(input), notBefore } };
  } catch (error) {
    if (error instanceof Invalid) return { ok: false, problem: { field: error.field, message: error.message } };
    throw error;
  }
}
