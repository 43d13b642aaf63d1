/**
 * What a writing `run:<id>` event handler sees (`run-progress-events.ts`,
 * `run-log-events.ts`): the attempt it writes for, the event's transaction,
 * and the idempotency helpers. `RunChannel` builds one per event.
 */
import type { Logger } from 'pino';
import { isTerminalState, parseTimestampMicros } from '../protocol/index.ts';
import type { FieldErrors, RunPlan } from '../protocol/index.ts';
import type { CredentialRedactor } from '../protocol/credential-redactor.ts';
import type { ChannelReply } from './phoenix-channel.ts';
import { error } from './phoenix-channel.ts';
import type { RunLifecycle } from './run-lifecycle.ts';
import type { RunRecord, Store } from './store/store.ts';

export interface RunEventContext {
  readonly runId: string;
  readonly attempt: number;
  readonly plan: RunPlan;
  readonly logger: Logger;
  readonly lifecycle: RunLifecycle;
  /** The event's transaction: every read and write of the handler goes through it. */
  readonly store: Store;
  /** Current run, or an error reply when this attempt may not write any more. */
  inFlight(): Promise<RunRecord | ChannelReply>;
  /** The reply stored for an event already handled under `key`, if any. */
  replayed(key: string): Promise<ChannelReply | undefined>;
  /** Stores `response` as the reply of `key` (in the same transaction) and answers it. */
  remember(key: string, response: unknown): Promise<ChannelReply>;
  /** The scrubber of the credentials the plan names, for log lines. */
  credentialScrubber(): Promise<CredentialRedactor>;
}

export const ALREADY_COMPLETED: FieldErrors = { state: ['already in completed state'] };
export const SUPERSEDED: FieldErrors = { run: ['this attempt was superseded'] };

/** Current run, or an error reply when this attempt may not write any more. */
export async function inFlightRun(store: Store, runId: string, attempt: number): Promise<RunRecord | ChannelReply> {
  const run = await store.getRun(runId);
  if (!run) return error({ run: ['not found'] });
  if (run.attempts !== attempt) return error(SUPERSEDED);
  if (isTerminalState(run.state)) return error(ALREADY_COMPLETED);
  if (run.state === 'available') return error(SUPERSEDED);
  return run;
}

/** Milliseconds from a protocol µs timestamp, or the server clock when it is missing or bad. */
export function timeFrom(value: unknown, fallback: number): number {
  const micros = parseTimestampMicros(value);
  return micros === undefined ? fallback : Number(micros / 1000n);
}
