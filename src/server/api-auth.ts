/**
 * Who may call the JSON API: a request carries `Authorization: Bearer
 * <token>` with one of the server's API tokens (docs/security.md). One small
 * module so that every HTTP surface of `lanes server` (the JSON API, the
 * dashboard) checks tokens the same way.
 *
 * Tokens are kept as SHA-256 digests and a presented token is hashed and
 * compared with `timingSafeEqual` against every digest, without stopping at
 * the first match: neither the length of a configured token nor the position
 * of a wrong byte shows in the time an answer takes.
 */
import { hash, timingSafeEqual } from 'node:crypto';
import { apiTokenProblem, MAX_API_TOKEN_LENGTH } from '../protocol/index.ts';

export { isLoopbackHost } from '../protocol/index.ts';

export type ApiAuthResult =
  | { ok: true }
  | { ok: false; error: 'missing_token' | 'invalid_token'; message: string };

function digest(token: string): Buffer {
  // The one-shot hash(): no Hash object per request (every API request pays this).
  return hash('sha256', token, 'buffer');
}

/** The set of API tokens one server accepts. */
export class ApiTokens {
  readonly #digests: readonly Buffer[];

  /** Throws a plain `Error` naming the problem when a token is unusable. */
  constructor(tokens: readonly string[]) {
    for (const [index, token] of tokens.entries()) {
      const problem = apiTokenProblem(token);
      if (problem) throw new Error(`API token ${index + 1} ${problem}`);
    }
    this.#digests = tokens.map(digest);
  }

  get size(): number {
    return this.#digests.length;
  }

  /** True when `token` is one of the configured tokens. Constant time in the token's content. */
  matches(token: string): boolean {
    if (token.length === 0 || token.length > MAX_API_TOKEN_LENGTH) return false;
    const presented = digest(token);
    let found = false;
    for (const known of this.#digests) found = timingSafeEqual(presented, known) || found;
    return found;
  }

  /**
   * Checks an `Authorization` header value (`req.headers.authorization`).
   * A missing header, another scheme or an empty token is `missing_token`;
   * a bearer token that matches none is `invalid_token`.
   */
  check(authorization: string | undefined): ApiAuthResult {
    if (this.#digests.length === 0) {
      return { ok: false, error: 'missing_token', message: 'this server has no API token configured: start it with --api-token or LANES_API_TOKEN' };
    }
    const match = authorization === undefined ? null : /^Bearer[ ]+(\S+)\s*$/i.exec(authorization);
    if (!match?.[1]) return { ok: false, error: 'missing_token', message: 'send the API token as "Authorization: Bearer <token>"' };
    if (!this.matches(match[1])) return { ok: false, error: 'invalid_token', message: 'the API token is wrong' };
    return { ok: true };
  }
}
