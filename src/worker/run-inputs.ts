/**
 * What a run needs before it can execute: its plan and its input, fetched on
 * the run channel (`fetch:plan`, `fetch:dataclip`), or taken from the claim
 * reply when the server offered `claim_plans`. A failure is a `RunFailure`
 * with the protocol's error type, which the run reports as `exception`.
 */
import type { Channel } from 'phoenix';
import { FETCH_DATACLIP, FETCH_PLAN } from '../protocol/events.ts';
import type { RunPlan } from '../protocol/messages.ts';
import { ERROR_TYPES } from '../protocol/reasons.ts';
import { decodeDataclip } from './dataclip-reply.ts';
import { readPlanReply } from './plan-reply.ts';
import { readWithResend } from './push.ts';

/** Why a run could not start, with the `error_type` it is reported with. */
export class RunFailure extends Error {
  readonly errorType: string;
  constructor(errorType: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.errorType = errorType;
  }
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

export async function fetchPlan(channel: Channel, timeoutMs: number): Promise<RunPlan> {
  let reply: unknown;
  try {
    reply = await readWithResend(channel, FETCH_PLAN, {}, timeoutMs);
  } catch (error) {
    throw new RunFailure(ERROR_TYPES.plan, `could not fetch the plan: ${errorMessage(error)}`, { cause: error });
  }
  const reading = readPlanReply(reply);
  if (!reading.ok) throw new RunFailure(ERROR_TYPES.plan, `the plan is malformed: ${reading.problem}`);
  return reading.plan;
}

export async function fetchDataclip(channel: Channel, dataclipId: string, timeoutMs: number): Promise<unknown> {
  let reply: unknown;
  try {
    reply = await readWithResend(channel, FETCH_DATACLIP, { id: dataclipId }, timeoutMs);
  } catch (error) {
    throw new RunFailure(ERROR_TYPES.dataclip, `could not fetch dataclip ${dataclipId}: ${errorMessage(error)}`, { cause: error });
  }
  const decoded = decodeDataclip(reply);
  if (!decoded.ok) throw new RunFailure(ERROR_TYPES.dataclip, `dataclip ${dataclipId} ${decoded.problem}`, { cause: decoded.cause });
  return decoded.value;
}

/** The input a claim reply carried (`claim_plans`: the dataclip's JSON text). */
export function readInlineDataclip(dataclipId: string, text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new RunFailure(ERROR_TYPES.dataclip, `dataclip ${dataclipId} is not JSON`, { cause: error });
  }
}
