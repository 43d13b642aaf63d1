/**
 * `run:heartbeat` on a run's channel while the run is the worker's, only when
 * the server offers `run_heartbeat`: from the join of a run that executes
 * (run-attempt.ts) or waits in its lane's backlog (worker-runs.ts).
 */
import type { Channel } from 'phoenix';
import type { Logger } from 'pino';
import { CAPABILITY_RUN_HEARTBEAT, RUN_HEARTBEAT } from '../protocol/events.ts';
import { timestampMicros } from '../protocol/timestamp.ts';
import { pushAndWait } from './push.ts';
import type { ServerFeatures } from './server-features.ts';

export interface Heartbeat {
  stop(): void;
}

/** `run:heartbeat` on the run channel, only when the server offers `run_heartbeat`. */
export function startHeartbeat(channel: Channel, features: ServerFeatures, logger: Logger): Heartbeat {
  const intervalMs = features.heartbeatIntervalMs;
  if (!features.capabilities.has(CAPABILITY_RUN_HEARTBEAT) || intervalMs === null) return { stop: () => {} };
  const beat = (): void => {
    // A beat pushed while disconnected would only wait in phoenix's buffer; the next one after the rejoin counts.
    if (channel.state !== 'joined') return;
    pushAndWait(channel, RUN_HEARTBEAT, { timestamp: timestampMicros() }, intervalMs).catch((error: unknown) => {
      logger.debug({ err: error }, 'run heartbeat not acknowledged');
    });
  };
  // The server's lease runs from the claim, so the first beat is due one interval later, not now:
  // a beat at join would only queue ahead of fetch:plan on the critical path to run:start.
  const timer = setInterval(beat, intervalMs);
  return { stop: () => clearInterval(timer) };
}
