/** The JSON API's queue routes: the queues with their counts, suspend and resume. */
import type { ServerResponse } from 'node:http';
import { QUEUE_NAME_PATTERN } from '../protocol/index.ts';
import { badQueueName } from './field-errors.ts';
import type { HttpApiDeps } from './http-api-deps.ts';
import { sendJson } from './http-json.ts';
import { HttpProblem } from './http-problem.ts';

export async function listQueues(deps: HttpApiDeps, res: ServerResponse): Promise<void> {
  const now = Date.now();
  const queues = (await deps.store.queueStats()).map((stats) => ({
    name: stats.name,
    suspended: stats.suspended,
    counts: stats.counts,
    oldest_available_age_ms: stats.oldestAvailableAt === null ? null : Math.max(0, now - stats.oldestAvailableAt),
  }));
  sendJson(res, 200, { queues });
}

export async function suspendQueue(deps: HttpApiDeps, res: ServerResponse, name: string, suspended: boolean): Promise<void> {
  if (!QUEUE_NAME_PATTERN.test(name)) throw new HttpProblem(400, 'validation', badQueueName(name), 'name');
  await deps.store.setQueueSuspended(name, suspended, Date.now());
  deps.logger.info({ queue: name, suspended }, suspended ? 'queue suspended' : 'queue resumed');
  if (!suspended) deps.lifecycle.enqueued(name);
  sendJson(res, 200, { name, suspended });
}
