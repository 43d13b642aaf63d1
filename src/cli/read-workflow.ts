import { readFile } from 'node:fs/promises';
import type { SubmitRunBody } from '../client/lanes-api-client.ts';

/** A problem with what the user gave the command: printed as one line, exit 2. */
export class UsageProblem extends Error {}

/**
 * Reads a workflow file: either a bare plan (`{jobs, triggers, edges}`, which
 * may also carry `queue` and `input`) or a request body (`{plan, input?, queue?}`).
 */
export async function readWorkflow(path: string): Promise<SubmitRunBody> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new UsageProblem(`cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new UsageProblem(`${path} is not JSON: ${(error as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new UsageProblem(`${path} must hold a JSON object`);
  const record = parsed as Record<string, unknown>;
  if ('plan' in record) return record as unknown as SubmitRunBody;
  if ('jobs' in record) {
    const { queue, input, ...plan } = record;
    return {
      plan,
      ...(typeof queue === 'string' ? { queue } : {}),
      ...(input !== undefined ? { input } : {}),
    };
  }
  throw new UsageProblem(`${path} is neither a plan (with "jobs") nor a request (with "plan")`);
}
