/**
 * Routes `phx_join` to the protocol's channels: `worker:queue` and
 * `run:<id>`. Any other topic is refused with `unmatched topic`.
 */
import { RUN_TOPIC_PREFIX, WORKER_QUEUE_TOPIC } from '../protocol/index.ts';
import type { ChannelPeer, ChannelRouter, JoinResult } from './phoenix-channel.ts';
import { QueueChannel } from './queue-channel.ts';
import type { QueueChannelDeps } from './queue-channel.ts';
import { RunChannel } from './run-channel.ts';
import type { RunChannelDeps } from './run-channel.ts';

export class LanesChannelRouter implements ChannelRouter {
  readonly #queueDeps: QueueChannelDeps;
  readonly #runDeps: RunChannelDeps;

  constructor(deps: { queue: QueueChannelDeps; run: RunChannelDeps }) {
    this.#queueDeps = deps.queue;
    this.#runDeps = deps.run;
  }

  async join(topic: string, payload: unknown, peer: ChannelPeer): Promise<JoinResult> {
    if (topic === WORKER_QUEUE_TOPIC) return QueueChannel.join(this.#queueDeps, payload, peer);
    if (topic.startsWith(RUN_TOPIC_PREFIX) && topic.length > RUN_TOPIC_PREFIX.length) {
      return RunChannel.join(this.#runDeps, topic.slice(RUN_TOPIC_PREFIX.length), payload, peer);
    }
    return { ok: false, response: { reason: 'unmatched topic' } };
  }
}
