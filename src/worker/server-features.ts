/** What the server offered when it let the worker join `worker:queue`. */
import {
  CAPABILITY_CLAIM_PLANS,
  CAPABILITY_IDEMPOTENT_EVENTS,
  CAPABILITY_MEMORY_CLAIMS,
  CAPABILITY_RUN_CANCEL,
  CAPABILITY_RUN_HEARTBEAT,
  queueJoinReplyShape,
} from '../protocol/index.ts';
import type { Capability } from '../protocol/index.ts';

/** What the server offered in its join reply. Lightning offers nothing. */
export interface ServerFeatures {
  capabilities: ReadonlySet<Capability>;
  heartbeatIntervalMs: number | null;
  leaseMs: number | null;
}

const KNOWN: readonly Capability[] = [CAPABILITY_RUN_HEARTBEAT, CAPABILITY_IDEMPOTENT_EVENTS, CAPABILITY_RUN_CANCEL, CAPABILITY_MEMORY_CLAIMS, CAPABILITY_CLAIM_PLANS];

/**
 * The features of a join reply (`QueueJoinReplySchema`): capabilities this
 * worker knows, positive intervals. A reply that does not fit the schema
 * (Lightning's `{}` does) offers nothing: extensions are used only when
 * offered plainly.
 */
export function parseFeatures(response: unknown): ServerFeatures {
  const reply = queueJoinReplyShape.check(response) ? response : {};
  const offered = reply.capabilities ?? [];
  return {
    capabilities: new Set(KNOWN.filter((name) => offered.includes(name))),
    heartbeatIntervalMs: reply.heartbeat_interval_ms ?? null,
    leaseMs: reply.lease_ms ?? null,
  };
}
