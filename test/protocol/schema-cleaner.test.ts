/**
 * The compiled cleaner (protocol/schema-cleaner.ts) must drop exactly what
 * TypeBox's own `Clean` drops: every shape of protocol/ and a few schemas
 * built to take the cleaner's fallback paths, each value salted with unknown
 * fields at every level, cleaned both ways and compared.
 */
import test from 'ava';
import Type from 'typebox';
import type { TSchema } from 'typebox';
import { Clean, Create } from 'typebox/value';
import * as protocol from '../../src/protocol/index.ts';
import { compileCleaner } from '../../src/protocol/schema-cleaner.ts';

/** Adds an unknown field to every object in `value`, arrays included. */
function salt(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(salt);
  if (typeof value !== 'object' || value === null) return value;
  const out: Record<string, unknown> = { extra_field: { nested: [1, { deeper: true }] } };
  for (const [key, inner] of Object.entries(value)) out[key] = salt(inner);
  return out;
}

function sameAsTypeBox(t: import('ava').ExecutionContext, schema: TSchema, value: unknown, label: string): void {
  const salted = salt(value);
  const expected = Clean(schema, structuredClone(salted));
  const actual = compileCleaner(schema)(structuredClone(salted));
  t.deepEqual(actual, expected, label);
}

const job = { id: 'j', name: 'job', body: 'fn(s => s)', adaptor: '@openfn/language-common@latest', credential_id: 'c' };
const fullPlan = {
  name: 'p',
  project_id: 'pr',
  starting_node_id: 't',
  triggers: [{ id: 't', type: 'webhook' }],
  jobs: [job, { ...job, id: 'k', name: null, credential_id: null }],
  edges: [
    { id: 'e', source_trigger_id: 't', target_job_id: 'j', condition: 'always', enabled: true },
    { id: 'f', source_job_id: 'j', source_trigger_id: null, target_job_id: 'k', condition: null },
  ],
  options: { run_timeout_ms: 5, run_memory_limit_mb: 64, payload_limit_mb: 1, log_payload_limit_mb: 1, output_dataclips: true, job_log_level: 'info', sanitize: 'none' },
};

test('a plan and a submission are cleaned as TypeBox cleans them', (t) => {
  sameAsTypeBox(t, protocol.PlanBodySchema, fullPlan, 'full plan');
  sameAsTypeBox(t, protocol.PlanBodySchema, { ...fullPlan, triggers: null, edges: null, options: null }, 'plan with nulls');
  sameAsTypeBox(t, protocol.PlanReplySchema, { ...fullPlan, id: 'r', dataclip_id: 'd' }, 'plan reply');
  sameAsTypeBox(t, protocol.SubmissionBodySchema, { queue: 'q', priority: 1, max_attempts: 2, idempotency_key: 'k', plan: fullPlan, input: { data: { a: 1 } } }, 'submission');
});

test('every schema of protocol/ is cleaned as TypeBox cleans it', (t) => {
  const schemas = Object.entries(protocol).filter(([name, value]) => name.endsWith('Schema') && typeof value === 'object' && value !== null);
  t.true(schemas.length > 20, `found ${schemas.length} schemas`);
  for (const [name, schema] of schemas) {
    let value: unknown;
    try {
      value = Create(schema as TSchema);
    } catch {
      continue; // a schema TypeBox cannot make a value for (a constraint it cannot satisfy) is covered above if it matters
    }
    sameAsTypeBox(t, schema as TSchema, value, name);
  }
});

test('the unmodelled cases fall back to TypeBox and still match it', (t) => {
  const twoObjects = Type.Object({ u: Type.Union([Type.Object({ a: Type.String() }), Type.Object({ b: Type.Number() })]) });
  sameAsTypeBox(t, twoObjects, { u: { a: 'x' } }, 'union of two objects, first');
  sameAsTypeBox(t, twoObjects, { u: { b: 1 } }, 'union of two objects, second');
  const open = Type.Object({ o: Type.Object({ k: Type.Object({ x: Type.String() }) }, { additionalProperties: true }) });
  sameAsTypeBox(t, open, { o: { k: { x: 'y' }, free: 1 } }, 'additionalProperties: true keeps unknown keys');
  const record = Type.Object({ r: Type.Record(Type.String(), Type.Object({ x: Type.String() })) });
  sameAsTypeBox(t, record, { r: { a: { x: '1' }, b: { x: '2' } } }, 'record');
  const nested = Type.Array(Type.Union([Type.Array(Type.Object({ x: Type.String() })), Type.Null(), Type.String()]));
  sameAsTypeBox(t, nested, [[{ x: 'a' }], null, 's'], 'arrays of unions');
  const intersect = Type.Intersect([Type.Object({ a: Type.String() }), Type.Object({ b: Type.String() })]);
  sameAsTypeBox(t, intersect, { a: 'a', b: 'b' }, 'intersect');
});

test('cleaning drops what the plan schema does not name, in place', (t) => {
  const value = { jobs: [{ ...job, secret_extra: 'x' }], unknown: 1, options: { run_timeout_ms: 5, other: true } };
  const cleaned = protocol.planBodyShape.clean(value as never);
  t.is(cleaned, value as never);
  t.deepEqual(cleaned, { jobs: [job], options: { run_timeout_ms: 5 } });
});
