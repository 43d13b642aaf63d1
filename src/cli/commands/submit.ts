/**
 * `lanes submit FILE`: sends a workflow to the server's JSON API, and with
 * `--wait` follows the run to its end. A file that cannot be read or parsed
 * and a server that is down are usage errors (exit 2, one line).
 */
import { readFile } from 'node:fs/promises';
import { readWorkflow, UsageProblem } from '../read-workflow.ts';
import { resolve } from 'node:path';
import type { Argv } from 'yargs';
import { ApiError, InvalidRequestError, ServerUnreachableError, UnexpectedResponseError } from '../../client/api-error.ts';
import { LanesApiClient } from '../../client/lanes-api-client.ts';
import type { SubmitRunBody, SubmittedRun } from '../../client/lanes-api-client.ts';
import type { OptionSpec } from '../../config/option-spec.ts';
import { parseHttpUrl, parsePositiveInteger, parseSecondsToMs } from '../../config/parse-value.ts';
import { RawConfig } from '../../config/raw-config.ts';
import { ConfigError } from '../../errors/config-error.ts';
import type { CliContext } from '../cli-context.ts';
import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE } from '../exit-codes.ts';
import { declareOptions, pickFlags } from '../option-builder.ts';

export const DEFAULT_SERVER_URL = 'http://localhost:4000';

export const SUBMIT_OPTIONS: readonly OptionSpec[] = [
  { flag: 'server', env: 'LANES_SERVER_URL', type: 'string', defaultText: DEFAULT_SERVER_URL, describe: 'Base URL of the Lanes server API' },
  { flag: 'api-token', env: 'LANES_API_TOKEN', type: 'string', describe: 'API token of the server (the one `lanes dev` prints); the first when a list', secret: true },
  { flag: 'queue', alias: 'q', type: 'string', defaultText: 'the file\'s queue, else default', describe: 'Queue to put the run in' },
  { flag: 'input', alias: 'i', type: 'string', describe: 'Input of the run: JSON text, or @file' },
  { flag: 'wait', alias: 'w', type: 'boolean', describe: 'Wait for the run to finish, print it, exit 0 on success and 1 otherwise' },
  { flag: 'wait-timeout', type: 'string', defaultText: '600', describe: 'With --wait: give up after this many seconds' },
  { flag: 'priority', type: 'string', defaultText: '0', describe: 'Priority within the queue (higher first)' },
  { flag: 'idempotency-key', type: 'string', describe: 'Submitting the same key again returns the existing run' },
  { flag: 'max-attempts', type: 'string', defaultText: '1', describe: 'Attempts before a lost or crashed run is dead-lettered' },
];

export const command = 'submit <file>';
export const describe = 'Submit a workflow (a plan JSON file) to the server';

export function builder<T>(yargs: Argv<T>): Argv<T> {
  return declareOptions(yargs.positional('file', { type: 'string', describe: 'Workflow JSON: a plan {jobs, triggers, edges}, or {plan, input?, queue?}' }), SUBMIT_OPTIONS);
}

export async function handler(argv: Record<string, unknown>, ctx: CliContext): Promise<number> {
  const raw = new RawConfig(SUBMIT_OPTIONS, pickFlags(argv, SUBMIT_OPTIONS), ctx.env);
  const serverUrl = raw.read('server', parseHttpUrl, DEFAULT_SERVER_URL);
  const file = String(argv['file']);
  let body: SubmitRunBody;
  try {
    body = await readWorkflow(resolve(ctx.cwd, file));
    body = await applyOptions(body, raw, ctx.cwd);
  } catch (error) {
    if (error instanceof UsageProblem) {
      ctx.err(`lanes submit: ${error.message}`);
      return EXIT_USAGE;
    }
    throw error;
  }

  // A comma-separated list (as the server takes it) sends its first token.
  const apiToken = raw.get('api-token')?.value.split(',')[0]?.trim();
  const client = new LanesApiClient(serverUrl, apiToken ? { apiToken } : {});
  let submitted: SubmittedRun;
  try {
    submitted = await client.submitRun(body);
  } catch (error) {
    if (error instanceof InvalidRequestError) {
      // Checked here with the server's own schema: nothing was sent.
      ctx.err(`lanes submit: ${file} is not a valid run: ${error.message}`);
      return EXIT_USAGE;
    }
    if (error instanceof UnexpectedResponseError) {
      ctx.err(`lanes submit: ${error.message}`);
      return EXIT_FAILURE;
    }
    if (error instanceof ServerUnreachableError) {
      ctx.err(`lanes submit: ${error.message} (is it running? start one with "npm start", or pass --server)`);
      return EXIT_USAGE;
    }
    if (error instanceof ApiError && error.status === 401) {
      ctx.err(`lanes submit: ${error.message} (pass --api-token or set LANES_API_TOKEN to the server's token)`);
      return EXIT_USAGE;
    }
    if (error instanceof ApiError) {
      ctx.err(`lanes submit: the server refused the run: ${error.message}`);
      return error.status >= 500 ? EXIT_FAILURE : EXIT_USAGE;
    }
    throw error;
  }
  if (argv['wait'] !== true) {
    ctx.out(JSON.stringify(submitted));
    return EXIT_OK;
  }
  // Whatever happens while waiting, the run exists from here on: its id is on stderr at once.
  const runUrl = `${serverUrl.replace(/\/$/, '')}/api/runs/${submitted.id}`;
  ctx.err(`lanes submit: run ${submitted.id} queued on ${submitted.queue}; waiting for it to finish`);
  const timeoutMs = raw.read('wait-timeout', parseSecondsToMs, 600_000);
  try {
    const run = await client.waitForRun(submitted.id, { signal: AbortSignal.timeout(timeoutMs) });
    ctx.out(JSON.stringify(run, null, 2));
    return run.state === 'success' ? EXIT_OK : EXIT_FAILURE;
  } catch (error) {
    if (error instanceof DOMException && error.name === 'TimeoutError') {
      ctx.err(`lanes submit: gave up waiting for run ${submitted.id} (--wait-timeout); it is still on the server: ${runUrl}`);
      return EXIT_FAILURE;
    }
    if (error instanceof ServerUnreachableError || error instanceof ApiError || error instanceof UnexpectedResponseError) {
      ctx.err(`lanes submit: lost the server while waiting for run ${submitted.id}: ${error.message}; read it later at ${runUrl}`);
      return EXIT_FAILURE;
    }
    throw error;
  }
}

async function applyOptions(body: SubmitRunBody, raw: RawConfig, cwd: string): Promise<SubmitRunBody> {
  const result: SubmitRunBody = { ...body };
  const queue = raw.get('queue');
  if (queue) result.queue = queue.value;
  const input = raw.get('input');
  if (input) {
    let text = input.value;
    if (text.startsWith('@')) {
      const path = resolve(cwd, text.slice(1));
      try {
        text = await readFile(path, 'utf8');
      } catch (error) {
        throw new UsageProblem(`cannot read --input file ${path}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
      }
    }
    try {
      result.input = JSON.parse(text);
    } catch (error) {
      throw new UsageProblem(`--input is not JSON: ${(error as Error).message}`);
    }
  }
  try {
    const priority = raw.get('priority');
    if (priority) result.priority = raw.read('priority', parseInteger, 0);
    const key = raw.get('idempotency-key');
    if (key) result.idempotency_key = key.value;
    const attempts = raw.get('max-attempts');
    if (attempts) result.max_attempts = raw.read('max-attempts', parsePositiveInteger, 1);
  } catch (error) {
    if (error instanceof ConfigError) throw new UsageProblem(error.message);
    throw error;
  }
  return result;
}

function parseInteger(value: string): number {
  if (!/^-?\d+$/.test(value.trim())) throw new Error('must be a whole number');
  return Number(value.trim());
}
