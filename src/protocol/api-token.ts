/**
 * The rules of the JSON API's bearer token (docs/security.md), shared by the
 * server that checks it and the configuration that reads it: what a token may
 * look like, and which listen addresses may go without one.
 */

/** Shortest API token accepted: 16 characters (`openssl rand -hex 16` gives 32). */
export const MIN_API_TOKEN_LENGTH = 16;
/** Longest API token accepted. */
export const MAX_API_TOKEN_LENGTH = 512;
/** Printable ASCII without spaces or commas: a token fits a header, an env variable and a comma-separated list. */
const TOKEN_PATTERN = /^[\x21-\x2b\x2d-\x7e]+$/;

/** Why a token cannot be used as an API token; undefined when it can. Never quotes the token. */
export function apiTokenProblem(token: string): string | undefined {
  if (token.length < MIN_API_TOKEN_LENGTH) return `must be at least ${MIN_API_TOKEN_LENGTH} characters, got ${token.length}`;
  if (token.length > MAX_API_TOKEN_LENGTH) return `must be at most ${MAX_API_TOKEN_LENGTH} characters, got ${token.length}`;
  if (!TOKEN_PATTERN.test(token)) return 'must be printable ASCII without spaces or commas';
  return undefined;
}

/** True for a listen address only this machine can reach: the one place a server may run without an API token. */
export function isLoopbackHost(host: string): boolean {
  const bare = host.replace(/^\[|\]$/g, '').toLowerCase();
  return bare === 'localhost' || bare === '::1' || bare === '::ffff:127.0.0.1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(bare);
}
