/** What the server offered when it let the worker join `worker:queue`. */
import {
  CAPABILITY_CLAIM_PLANS,
  CAPABILITY_IDEMPOTENT_EVENTS,
  CAPABILITY_MEMORY_CLAIMS,
  CAPABILITY_RUN_CANCEL,
  CAPABILITY_RUN_HEARTBEAT,
} from '../protocol/events.ts';
import type { Capability } from '../protocol/events.ts';

/** What the server offered in its join reply. Lightning offers nothing. */
export interface ServerFeatures {
  capabilities: ReadonlySet<Capability>;
  heartbeatIntervalMs: number | null;
  leaseMs: number | null;
}

/** The features of a join reply: capabilities this worker knows, positive intervals; anything else is ignored. */
export function parseFeatures(response: unknown): ServerFeatures {
  const reply = typeof response === 'object' && response !== null ? (response as Record<string, unknown>) : {};
  const known: Capability[] = [CAPABILITY_RUN_HEARTBEAT, CAPABILITY_IDEMPOTENT_EVENTS, CAPABILITY_RUN_CANCEL, CAPABILITY_MEMORY_CLAIMS, CAPABILITY_CLAIM_PLANS];
  const offered = Array.isArray(reply['capabilities']) ? reply['capabilities'] : [];
  const capabilities = new Set<Capability>(known.filter((name) => offered.includes(name)));
  const positive = (value: unknown): number | null => (typeof value === 'number' && Number.isFinite(value) && value > 0 ? value : null);
  return { capabilities, heartbeatIntervalMs: positive(reply['heartbeat_interval_ms']), leaseMs: positive(reply['lease_ms']) };
}
