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
 * States, kept in a `StateMachine`: open → closed. The database handle and
 * its prepared statements belong to `open`; every method after `close()`
 * throws `STORE_CLOSED`.
 */
import { DatabaseSync } from 'node:sqlite';
import type { SQLInputValue, StatementSync } from 'node:sqlite';
import type { Logger } from 'pino';
import { StateMachine } from '../../state-machine.ts';
import { ServerError } from '../server-error.ts';
import { migrate } from './sqlite-migrations.ts';
import type { Row } from './store-rows.ts';

/** Bound on the prepared-statement cache (`#prepare`). */
const MAX_CACHED_STATEMENTS = 256;

type ConnectionState = { readonly kind: 'open'; readonly db: DatabaseSync; readonly statements: Map<string, StatementSync> } | { readonly kind: 'closed' };

export class SqliteConnection {
  readonly #state: StateMachine<ConnectionState>;

  private constructor(db: DatabaseSync, logger: Logger) {
    this.#state = new StateMachine<ConnectionState>({
      name: 'sqlite connection',
      initial: { kind: 'open', db, statements: new Map() },
      transitions: { open: ['closed'], closed: [] },
      logger,
    });
  }

  /** Opens (or creates) the database, turns on WAL and applies pending migrations. */
  static open(dbPath: string, logger: Logger): SqliteConnection {
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
    return new SqliteConnection(db, logger);
  }

  get isOpen(): boolean {
    return this.#state.kind === 'open';
  }

  close(): void {
    const open = this.#state.when('open');
    if (open === undefined) return;
    this.#state.to({ kind: 'closed' });
    open.statements.clear();
    open.db.close();
  }

  /** Runs `fn` in one IMMEDIATE transaction; nested calls join the outer one. */
  transaction<T>(fn: () => T): T {
    const { db } = this.#open();
    if (db.isTransaction) return fn();
    db.exec('BEGIN IMMEDIATE');
    try {
      const result = fn();
      db.exec('COMMIT');
      return result;
    } catch (error) {
      // A failed COMMIT (an I/O error, a full disk) has already rolled back: a second ROLLBACK would
      // throw "no transaction is active" and hide the error that matters.
      if (db.isTransaction) db.exec('ROLLBACK');
      throw error;
    }
  }

  /** `transaction` for an async body; the caller (`SqliteStore`) keeps every other call out until it ends. */
  async transactionAsync<T>(fn: () => Promise<T>): Promise<T> {
    const { db } = this.#open();
    db.exec('BEGIN IMMEDIATE');
    try {
      const result = await fn();
      db.exec('COMMIT');
      return result;
    } catch (error) {
      if (db.isOpen && db.isTransaction) db.exec('ROLLBACK');
      throw error;
    }
  }

  /** A trivial query, for `/readyz`. */
  ping(): boolean {
    const open = this.#state.when('open');
    if (open === undefined) return false;
    return open.db.prepare('SELECT 1 AS ok').get()?.['ok'] === 1;
  }

  /** The open state, or `STORE_CLOSED`. */
  #open(): Extract<ConnectionState, { kind: 'open' }> {
    const open = this.#state.when('open');
    if (open === undefined) throw new ServerError('STORE_CLOSED', 'the store is closed');
    return open;
  }

  /**
   * A prepared statement per SQL text, reused: preparing (parsing and planning
   * the SQL) costs more than running most of these statements. The texts are
   * the constants of the sqlite-*.ts query files plus one claim query per shape of chain, so the
   * cache is small; the bound only guards against a surprise.
   */
  #prepare(sql: string): StatementSync {
    const { db, statements } = this.#open();
    let statement = statements.get(sql);
    if (statement === undefined) {
      if (statements.size >= MAX_CACHED_STATEMENTS) statements.clear();
      statement = db.prepare(sql);
      statements.set(sql, statement);
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

  /** Runs an INSERT; returns the new row's rowid. */
  insert(sql: string, ...params: SQLInputValue[]): number {
    return Number(this.#prepare(sql).run(...params).lastInsertRowid);
  }
}
