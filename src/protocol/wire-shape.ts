/**
 * A wire or API shape: a TypeBox schema compiled once, whose `check` is the
 * hot path (claims, plans, events) and whose problems, on the cold path, name
 * the field as a dotted path (`plan.jobs[0].adaptor`) with the message the
 * schema carries.
 *
 * Messages live on the schemas themselves, as a `message` annotation (a
 * string, or a function of the value for messages that quote it) and, on an
 * object refusing unknown fields, `unknownMessage`. A failing keyword takes
 * the message of the nearest schema at its own place in the value (through
 * `anyOf` branches, never from a parent object); a missing required field
 * takes its own schema's message. TypeBox was chosen for speed on the claim
 * path: docs/protocol.md ("One schema per shape") has the figures.
 */
import type { Static, TSchema } from 'typebox';
import { Compile } from 'typebox/compile';
import { Settings } from 'typebox/system';
import { compileCleaner } from './schema-cleaner.ts';

/**
 * Most problems one value reports. TypeBox's default (8) is used up by a
 * union's branches (each tells why it did not match); the bound still keeps
 * an error reply small whatever the payload (a batch of 10 000 bad lines).
 */
export const MAX_REPORTED_ERRORS = 64;
Settings.Set({ maxErrors: MAX_REPORTED_ERRORS });

/** A schema's message: fixed, or made from the value it refused (to quote it). */
export type ShapeMessage = string | ((value: unknown) => string);

/** The first problem of a value: the field's dotted path and what is wrong with it. */
export interface FieldProblem {
  field: string;
  message: string;
}

/** Field → messages, the `{field: [messages]}` error reply of a channel event (PROTOCOL.md). */
export type FieldErrors = Record<string, string[]>;

/** A compiled shape: a fast yes/no, and the problems when the answer is no. */
export interface WireShape<T> {
  readonly schema: TSchema;
  check(value: unknown): value is T;
  /** The first problem (in the schema's field order), or undefined when the value fits. `prefix` is prepended to the path. */
  firstProblem(value: unknown, prefix?: string): FieldProblem | undefined;
  /** Every problem, grouped by field, for socket error replies. */
  problems(value: unknown, prefix?: string): FieldErrors;
  /** Drops the fields the schema does not name, in place (a checked value the server is about to keep). */
  clean(value: T): T;
}

interface SchemaError {
  keyword: string;
  schemaPath: string;
  instancePath: string;
  params: Record<string, unknown>;
  message: string;
}

/** Schema path segments below which the value's place changes (a property, an item). */
const DESCENDS = new Set(['properties', 'items', 'patternProperties', 'additionalProperties', 'prefixItems']);

const unescape = (segment: string): string => segment.replace(/~1/g, '/').replace(/~0/g, '~');

function segments(pointer: string): string[] {
  const body = pointer.startsWith('#') ? pointer.slice(1) : pointer;
  return body === '' ? [] : body.slice(1).split('/').map(unescape);
}

/** `/plan/jobs/0/adaptor` → `plan.jobs[0].adaptor`, after `prefix`. */
function fieldPath(parts: readonly string[], prefix: string): string {
  let path = prefix;
  for (const part of parts) path += /^\d+$/.test(part) ? `[${part}]` : path === '' ? part : `.${part}`;
  return path;
}

function child(node: unknown, key: string): unknown {
  return typeof node === 'object' && node !== null ? (node as Record<string, unknown>)[key] : undefined;
}

function render(message: unknown, value: unknown): string | undefined {
  if (typeof message === 'string') return message;
  if (typeof message === 'function') return String((message as (value: unknown) => unknown)(value));
  return undefined;
}

/** The message of the schema at `schemaPath`, or of its nearest ancestor at the same place in the value. */
function messageAt(root: TSchema, schemaPath: readonly string[], value: unknown): string | undefined {
  let node: unknown = root;
  let found: unknown = child(root, 'message');
  for (const part of schemaPath) {
    if (DESCENDS.has(part)) found = undefined;
    node = child(node, part);
    const own = child(node, 'message');
    if (own !== undefined) found = own;
  }
  return render(found, value);
}

function valueAt(value: unknown, parts: readonly string[]): unknown {
  let node = value;
  for (const part of parts) node = child(node, part);
  return node;
}

function schemaAt(root: TSchema, parts: readonly string[]): unknown {
  let node: unknown = root;
  for (const part of parts) node = child(node, part);
  return node;
}

/** Whether the schema at `schemaPath` is the `null` branch of a union. */
function isNullBranch(root: TSchema, schemaPath: readonly string[]): boolean {
  return schemaPath.at(-2) === 'anyOf' && child(schemaAt(root, schemaPath), 'type') === 'null';
}

/** Turns one TypeBox error into field problems (an unknown or missing field names that field). */
function toProblems(root: TSchema, error: SchemaError, value: unknown, prefix: string): FieldProblem[] {
  const at = segments(error.instancePath);
  const schemaPath = segments(error.schemaPath);
  if (error.keyword === 'additionalProperties') {
    const object = schemaAt(root, schemaPath);
    const names = Array.isArray(error.params['additionalProperties']) ? (error.params['additionalProperties'] as unknown[]) : [];
    return names.map((name) => ({ field: fieldPath([...at, String(name)], prefix), message: render(child(object, 'unknownMessage'), name) ?? 'is not a known field' }));
  }
  // TypeBox also reports each unknown property as a `false` schema under additionalProperties: the error above names it.
  if (error.keyword === 'boolean' && schemaPath.at(-1) === 'additionalProperties') return [];
  if (error.keyword === 'required') {
    const names = Array.isArray(error.params['requiredProperties']) ? (error.params['requiredProperties'] as unknown[]) : [];
    return names.map((name) => ({
      field: fieldPath([...at, String(name)], prefix),
      message: messageAt(root, [...schemaPath, 'properties', String(name)], undefined) ?? 'is required',
    }));
  }
  if (error.keyword === 'anyOf' || isNullBranch(root, schemaPath)) {
    // A union with a message speaks for all its branches; one without lets the branches that could
    // have matched speak (`Union([X, Null])`: X's problems, not "must be null" nor "must match anyOf").
    const message = messageAt(root, error.keyword === 'anyOf' ? schemaPath : schemaPath.slice(0, -2), valueAt(value, at));
    return message === undefined ? [] : [{ field: fieldPath(at, prefix), message }];
  }
  return [{ field: fieldPath(at, prefix), message: messageAt(root, schemaPath, valueAt(value, at)) ?? error.message }];
}

/**
 * Compiles `schema` once, on first use (importing protocol/ compiles nothing:
 * an engine child that needs only a constant pays for no schema); the
 * returned shape is reused for every value.
 */
export function wireShape<S extends TSchema>(schema: S): WireShape<Static<S>> {
  let compiled: ReturnType<typeof Compile<S>> | undefined;
  let cleaner: (<T>(value: T) => T) | undefined;
  const validator = { Check: (value: unknown) => (compiled ??= Compile(schema)).Check(value), Errors: (value: unknown) => (compiled ??= Compile(schema)).Errors(value) };
  const all = (value: unknown, prefix: string): FieldProblem[] =>
    (validator.Errors(value) as SchemaError[]).flatMap((error) => toProblems(schema, error, value, prefix)).slice(0, MAX_REPORTED_ERRORS);
  return {
    schema,
    check: (value: unknown): value is Static<S> => validator.Check(value),
    firstProblem(value, prefix = '') {
      if (validator.Check(value)) return undefined;
      return all(value, prefix)[0] ?? { field: prefix === '' ? 'body' : prefix, message: 'is not valid' };
    },
    problems(value, prefix = '') {
      const errors: FieldErrors = {};
      if (validator.Check(value)) return errors;
      for (const { field, message } of all(value, prefix)) {
        const list = (errors[field === '' ? 'payload' : field] ??= []);
        if (!list.includes(message)) list.push(message);
      }
      return errors;
    },
    clean: (value) => (cleaner ??= compileCleaner(schema))(value),
  };
}
