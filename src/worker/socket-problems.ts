/**
 * What went wrong with the connection to the server, as text for the
 * worker's warnings: a transport error, a close, a refused join.
 */

/** The text of a phoenix transport error: `ws`'s ErrorEvent carries the message ("Unexpected server response: 401", "getaddrinfo ENOTFOUND …"). */
export function describeSocketError(error: unknown): string {
  if (typeof error !== 'object' || error === null) return String(error);
  const { message, error: inner } = error as { message?: unknown; error?: unknown };
  if (typeof message === 'string' && message.length > 0) return message;
  if (inner instanceof Error) return inner.message;
  return 'connection failed';
}

/** A join refusal's reason and details, as one string. */
export function describeRefusal(response: unknown): string {
  if (typeof response !== 'object' || response === null) return String(response);
  const { reason, errors } = response as { reason?: unknown; errors?: unknown };
  const text = typeof reason === 'string' ? reason : JSON.stringify(response);
  return errors === undefined ? text : `${text}: ${JSON.stringify(errors)}`;
}

/** A WebSocket close event as `closed (code 1006)`. */
export function closeDescription(event: unknown): string {
  const code = typeof event === 'object' && event !== null ? (event as { code?: unknown }).code : undefined;
  return typeof code === 'number' ? `closed (code ${code})` : 'closed';
}
