/** `PUT /api/credentials/:id`: stores a credential body, a secret that never reaches a log line. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { credentialBodyShape } from '../protocol/index.ts';
import type { HttpApiDeps } from './http-api-deps.ts';
import { readBody, sendJson } from './http-json.ts';
import { HttpProblem } from './http-problem.ts';

export async function putCredential(deps: HttpApiDeps, req: IncomingMessage, res: ServerResponse, id: string): Promise<void> {
  if (id.length === 0 || id.length > 255) throw new HttpProblem(400, 'validation', 'must be 1 to 255 characters', 'id');
  const body = await readBody(req, deps.options.maxBodyBytes);
  if (!credentialBodyShape.check(body)) throw new HttpProblem(422, 'validation', 'must be a JSON object', 'body');
  await deps.store.putCredential(id, JSON.stringify(body), Date.now());
  // The body is a secret: log the id only.
  deps.logger.info({ credentialId: id }, 'credential stored');
  sendJson(res, 200, { id });
}
