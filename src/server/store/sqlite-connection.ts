/**
 * The one `node:sqlite` connection of the SQLite store (WAL): opening and
 * migrating, transactions, and cached prepared statements. The SQL lives by
 * aggregate beside it (sqlite-runs.ts, sqlite-claims.ts, sqlite-run-events.ts,
 * sqlite-listings.ts, sqlite-credentials.ts, sqlite-workers.ts), as
 * synchronous functions over this connection; the multi-row ones run in one
 * transaction, so a claim or a completion is all or nothing. Times are epoch
 * milliseconds. `SqliteStore` (sqlite-store.ts) puts the async `Store`
 * interface in front of them.
 *
 * States: open → closed. Every method after `close()` throws.
 */
import { DatabaseSync } from 'node:sqlite';
import type { SQLInputValue, StatementSync } from 'node:sqlite';
import { ServerError } from '../server-error.ts';
import { migrate } from './sqlite-migrations.ts';
import type { Row } from './store-rows.ts';

/** Bound on the prepared-statement cache (`#prepare`). */
const MAX_CACHED_STATEMENTS = 256;

export class SqliteConnection {
  readonly #db: DatabaseSync;
  readonly #statements = new Map<string, StatementSync>();
  #closed = false;

  private constructor(db: DatabaseSync) {
    this.#db = db;
  }

  /** Opens (or creates) the database, turns on WAL and applies pending migrations. */
  static open(dbPath: string): SqliteConnection {
    const db = new DatabaseSync(dbPath);
    try {
      if (dbPath !== ':memory:') db.exec('PRAGMA journal_mode = WAL');
      db.exec('PRAGMA synchronous = NORMAL');
      db.exec('PRAGMA busy_timeout = 5000');
      db.exec('PRAGMA foreign_keys = ON');
      migrate(db);
    } catch (error) {
      db.close();
      throw new ServerError('STORE_OPEN', `cannot open database ${dbPath}`, { cause: error });
    }
    return new SqliteConnection(db);
  }

  get isOpen(): boolean {
    return !this.#closed;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#db.close();
  }

  /** Runs `fn` in one IMMEDIATE transaction; nested calls join the outer one. */
  transaction<T>(fn: () => T): T {
    this.#assertOpen();
    if (this.#db.isTransaction) return fn();
    this.#db.exec('BEGIN IMMEDIATE');
    try {
      const result = fn();
      this.#db.exec('COMMIT');
      return result;
    } catch (error) {
      // A failed COMMIT (an I/O error, a full disk) has already rolled back: a second ROLLBACK would
      // throw "no transaction is active" and hide the error that matters.
      if (this.#db.isTransaction) this.#db.exec('ROLLBACK');
      throw error;
    }
  }

  /** `transaction` for an async body; the caller (`SqliteStore`) keeps every other call out until it ends. */
  async transactionAsync<T>(fn: () => Promise<T>): Promise<T> {
    this.#assertOpen();
    this.#db.exec('BEGIN IMMEDIATE');
    try {
      const result = await fn();
      this.#db.exec('COMMIT');
      return result;
    } catch (error) {
      if (this.#db.isOpen && this.#db.isTransaction) this.#db.exec('ROLLBACK');
      throw error;
    }
  }

  /** A trivial query, for `/readyz`. */
  ping(): boolean {
    if (this.#closed) return false;
    return this.#db.prepare('SELECT 1 AS ok').get()?.['ok'] === 1;
  }

  #assertOpen(): void {
    if (this.#closed) throw new ServerError('STORE_CLOSED', 'the store is closed');
  }

  /**
   * A prepared statement per SQL text, reused: preparing (parsing and planning
   * the SQL) costs more than running most of these statements. The texts are
   * the constants of the sqlite-*.ts query files plus one claim query per shape of chain, so the
   * cache is small; the bound only guards against a surprise.
   */
  #prepare(sql: string): StatementSync {
    this.#assertOpen();
    let statement = this.#statements.get(sql);
    if (statement === undefined) {
      if (this.#statements.size >= MAX_CACHED_STATEMENTS) this.#statements.clear();
      statement = this.#db.prepare(sql);
      this.#statements.set(sql, statement);
    }
    return statement;
  }

  get(sql: string, ...params: SQLInputValue[]): Row | undefined {
    return this.#prepare(sql).get(...params) as Row | undefined;
  }

  all(sql: string, ...params: SQLInputValue[]): Row[] {
    return this.#prepare(sql).all(...params) as Row[];
  }

  run(sql: string, ...params: SQLInputValue[]): number {
    return Number(this.#prepare(sql).run(...params).changes);
  }
}
