/** What the server offered when it let the worker join `worker:queue`. */
import { CAPABILITY_WORK_QUEUES, LANES_CAPABILITIES, queueJoinReplyShape, workAvailablePayloadShape } from '../protocol/index.ts';
import type { Capability } from '../protocol/index.ts';

/** What the server offered in its join reply. Lightning offers nothing. */
export interface ServerFeatures {
  capabilities: ReadonlySet<Capability>;
  heartbeatIntervalMs: number | null;
  leaseMs: number | null;
}


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
    capabilities: new Set(LANES_CAPABILITIES.filter((name) => offered.includes(name))),
    heartbeatIntervalMs: reply.heartbeat_interval_ms ?? null,
    leaseMs: reply.lease_ms ?? null,
  };
}

/**
 * The queues a `work-available` push names, when the server offered
 * `work_queues` and the payload fits its schema; otherwise null, which wakes
 * every lane (Lightning's `{}`, a malformed push: waking too many loses nothing).
 */
export function workQueuesOf(features: ServerFeatures, payload: unknown): readonly string[] | null {
  if (!features.capabilities.has(CAPABILITY_WORK_QUEUES) || !workAvailablePayloadShape.check(payload)) return null;
  return payload.queues ?? null;
}
