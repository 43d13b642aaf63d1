/**
 * Whether the database still takes writes. A server whose database fails
 * under it (disk full, an I/O error, a file turned read-only or immutable, a
 * PostgreSQL server gone or shutting down)
 * keeps answering reads, refuses writes with 503 instead of 500, and says why
 * on `/readyz`, so a load balancer stops sending it work. The first write
 * that succeeds again clears it.
 *
 * States: healthy ⇄ failing (with the SQLite error that put it there).
 */
import type { Logger } from 'pino';
import { StateMachine } from '../state-machine.ts';

type Health = { kind: 'healthy' } | { kind: 'failing'; reason: string; since: number };

/** SQLite primary result codes that mean the database itself cannot be written (not a bad query). */
const STORAGE_CODES: ReadonlySet<number> = new Set([
  8, // SQLITE_READONLY
  10, // SQLITE_IOERR
  11, // SQLITE_CORRUPT
  13, // SQLITE_FULL
  14, // SQLITE_CANTOPEN
  26, // SQLITE_NOTADB
]);

/** A PostgreSQL server that cannot be reached, or refuses writes: the connection, not the query. */
const UNREACHABLE_ERRNOS: ReadonlySet<string> = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENOTFOUND', 'EPIPE']);

/**
 * PostgreSQL SQLSTATEs of the same kind: class 08 (connection exception), 53 (insufficient
 * resources: disk full, out of memory), 57P (the server shutting down), 25006 (read-only transaction).
 */
function isPostgresStorageState(code: string): boolean {
  return /^(08|53|57P)/.test(code) || code === '25006';
}

/** The database error behind `error` (or its causes) when it is a storage failure, not a bad query. */
export function storageFailureOf(error: unknown): Error | undefined {
  for (let current = error, depth = 0; typeof current === 'object' && current !== null && depth < 5; depth++) {
    const { code, errcode } = current as { code?: unknown; errcode?: unknown };
    if (code === 'ERR_SQLITE_ERROR' && typeof errcode === 'number' && STORAGE_CODES.has(errcode & 0xff)) return current as Error;
    if (typeof code === 'string' && current instanceof Error && (UNREACHABLE_ERRNOS.has(code) || (/^[0-9A-Z]{5}$/.test(code) && isPostgresStorageState(code)))) return current;
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}

export class StorageHealth {
  readonly #health: StateMachine<Health>;
  readonly #logger: Logger;

  constructor(logger: Logger) {
    this.#logger = logger;
    this.#health = new StateMachine<Health>({
      name: 'storage health',
      initial: { kind: 'healthy' },
      // failing → failing: another error replaces the reason.
      transitions: { healthy: ['failing'], failing: ['failing', 'healthy'] },
      logger,
    });
  }

  /** Null while writes work; otherwise why they do not. */
  get problem(): string | null {
    return this.#health.when('failing')?.reason ?? null;
  }

  failed(error: Error): void {
    const reason = `the database cannot be written: ${error.message}`;
    if (this.problem === reason) return;
    this.#health.to({ kind: 'failing', reason, since: Date.now() });
    this.#logger.error({ err: error }, 'database write failed; writes refused with 503');
  }

  succeeded(): void {
    if (this.#health.kind === 'healthy') return;
    this.#health.to({ kind: 'healthy' });
    this.#logger.info('database writes work again');
  }
}
