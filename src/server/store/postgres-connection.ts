/**
 * The PostgreSQL store's way to the database: the pool a store made by
 * `PostgresStore.open` shares with its transaction handles, or the one
 * client of a transaction. The SQL lives by aggregate beside it
 * (postgres-runs.ts, postgres-claims.ts, postgres-run-events.ts,
 * postgres-queues.ts, postgres-listings.ts, postgres-credentials.ts,
 * postgres-workers.ts), as functions over this connection.
 *
 * States, kept in a `StateMachine` that a store and its transaction handles
 * share: open → closed (every query rejects with `STORE_CLOSED` after).
 */
import type { Pool, PoolClient, QueryResultRow } from 'pg';
import type { Logger } from 'pino';
import { StateMachine } from '../../state-machine.ts';
import { ServerError } from '../server-error.ts';
import type { Row } from './store-rows.ts';

type PoolState = { readonly kind: 'open' } | { readonly kind: 'closed' };

/** What a store and its transaction handles share: closing one closes them all. */
interface Shared {
  pool: Pool;
  state: StateMachine<PoolState>;
}

export class PostgresConnection {
  readonly #shared: Shared;
  /** The transaction's client, for the handle given to `transaction`'s callback. */
  readonly #client: PoolClient | undefined;

  private constructor(shared: Shared, client: PoolClient | undefined) {
    this.#shared = shared;
    this.#client = client;
  }

  /** A connection over an open pool (migrations already applied). */
  static over(pool: Pool, logger: Logger): PostgresConnection {
    const state = new StateMachine<PoolState>({ name: 'postgres connection', initial: { kind: 'open' }, transitions: { open: ['closed'], closed: [] }, logger });
    return new PostgresConnection({ pool, state }, undefined);
  }

  get pool(): Pool {
    return this.#shared.pool;
  }

  get isOpen(): boolean {
    return this.#shared.state.kind === 'open';
  }

  async close(): Promise<void> {
    if (this.#shared.state.kind === 'closed') return;
    this.#shared.state.to({ kind: 'closed' });
    await this.#shared.pool.end();
  }

  async #query<R extends QueryResultRow = Row>(sql: string, params: unknown[] = []): Promise<{ rows: R[]; rowCount: number }> {
    if (this.#shared.state.kind === 'closed') throw new ServerError('STORE_CLOSED', 'the store is closed');
    const result = await (this.#client ?? this.#shared.pool).query<R>(sql, params);
    return { rows: result.rows, rowCount: result.rowCount ?? 0 };
  }

  async all(sql: string, params: unknown[] = []): Promise<Row[]> {
    return (await this.#query(sql, params)).rows;
  }

  async get(sql: string, params: unknown[] = []): Promise<Row | undefined> {
    return (await this.#query(sql, params)).rows[0];
  }

  async run(sql: string, params: unknown[] = []): Promise<number> {
    return (await this.#query(sql, params)).rowCount;
  }

  /** Runs `fn` in one transaction on one client of the pool; inside a transaction already, joins it. */
  async transaction<T>(fn: (tx: PostgresConnection) => Promise<T>): Promise<T> {
    if (this.#client !== undefined) return fn(this);
    if (this.#shared.state.kind === 'closed') throw new ServerError('STORE_CLOSED', 'the store is closed');
    const client = await this.#shared.pool.connect();
    let broken = false;
    try {
      await client.query('BEGIN');
      const result = await fn(new PostgresConnection(this.#shared, client));
      await client.query('COMMIT');
      return result;
    } catch (error) {
      await client.query('ROLLBACK').catch(() => {
        broken = true;
      });
      throw error;
    } finally {
      client.release(broken);
    }
  }
}
