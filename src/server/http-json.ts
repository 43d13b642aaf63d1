/**
 * JSON in and out of the API: a reply with its length, and a request body
 * read within a byte limit, parsed, and refused whole when it is too big
 * (413), not JSON (400) or nested too deep to store (422).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { HttpProblem } from './http-problem.ts';
import { exceedsDepth, MAX_JSON_DEPTH } from './json-depth.ts';

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

export function readBody(req: IncomingMessage, maxBytes: number): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > maxBytes) {
      reject(new HttpProblem(413, 'payload_too_large', `body is larger than ${maxBytes} bytes`));
      req.resume();
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let failed = false;
    req.on('data', (chunk: Buffer) => {
      if (failed) return;
      size += chunk.length;
      if (size > maxBytes) {
        failed = true;
        reject(new HttpProblem(413, 'payload_too_large', `body is larger than ${maxBytes} bytes`));
        return;
      }
      chunks.push(chunk);
    });
    req.on('error', (error) => {
      if (!failed) reject(error);
      failed = true;
    });
    req.on('end', () => {
      if (failed) return;
      const text = Buffer.concat(chunks).toString('utf8');
      if (text.trim().length === 0) {
        resolve(undefined);
        return;
      }
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch {
        reject(new HttpProblem(400, 'invalid_json', 'body is not valid JSON', 'body'));
        return;
      }
      // Storing it means JSON.stringify, which overflows the stack on deep nesting: refuse it whole.
      if (exceedsDepth(parsed)) reject(new HttpProblem(422, 'validation', `is nested more than ${MAX_JSON_DEPTH} levels deep`, 'body'));
      else resolve(parsed);
    });
  });
}
