/**
 * Collects validation messages per field for the run channel's error replies
 * (`{field: [messages]}`, PROTOCOL.md).
 */
import { queueNameProblem } from '../protocol/index.ts';
import type { FieldErrors } from '../protocol/index.ts';

export class FieldErrorCollector {
  readonly errors: FieldErrors = {};

  add(field: string, message: string): void {
    (this.errors[field] ??= []).push(message);
  }

  get empty(): boolean {
    return Object.keys(this.errors).length === 0;
  }
}

export const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** The message for a bad queue name, with the value that was sent (cut to 80 characters) and the limit it broke. */
export function badQueueName(value: unknown): string {
  return queueNameProblem(value) ?? 'is not a queue name';
}
