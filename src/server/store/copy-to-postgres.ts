/**
 * Moving a deployment from SQLite to PostgreSQL: copies every row of a
 * SQLite database (with the server stopped) into an empty PostgreSQL
 * database, keeping ids, insertion order (`seq`, so `GET /api/runs` cursors
 * and claim order stay as they were) and the run-token key (so workers that
 * verify run tokens keep working). The target is migrated first and must
 * hold no runs; the copy is one transaction, so a failure leaves it empty.
 */
import type { Logger } from 'pino';
import { existsSync, readFileSync } from 'node:fs';
import { DatabaseSync } from 'node:sqlite';
import pg from 'pg';
import { ServerError } from '../server-error.ts';
import { PostgresStore } from './postgres-store.ts';
import { keyPathFor } from '../run-keys.ts';
import { describeDatabaseUrl } from './store-url.ts';

/** Tables in copy order, with the identity column PostgreSQL generates and SQLite stored. */
const TABLES: ReadonlyArray<{ name: string; identity: boolean }> = [
  { name: 'runs', identity: true },
  { name: 'run_attempts', identity: false },
  { name: 'dataclips', identity: false },
  { name: 'steps', identity: false },
  { name: 'log_lines', identity: true },
  { name: 'event_replies', identity: false },
  { name: 'credentials', identity: false },
  { name: 'workers', identity: false },
  { name: 'queues', identity: false },
];

/** Rows per INSERT: well under PostgreSQL's 65 535 parameters for the widest table (30 columns). */
const BATCH = 500;

export interface CopyReport {
  rows: Record<string, number>;
  runTokenKey: boolean;
}

/** `logger` takes the target store's state changes while it is migrated. */
export async function copySqliteToPostgres(options: { from: string; to: string; logger: Logger }): Promise<CopyReport> {
  if (!existsSync(options.from)) throw new ServerError('COPY_SOURCE', `no SQLite database at ${options.from}`);
  const source = new DatabaseSync(options.from, { readOnly: true });
  // Migrates the target (creating the tables) the way a server would.
  await (await PostgresStore.open(options.to, options.logger)).close();
  const client = new pg.Client({ connectionString: options.to });
  try {
    await client.connect();
  } catch (error) {
    source.close();
    throw new ServerError('STORE_OPEN', `cannot open database ${describeDatabaseUrl(options.to)}`, { cause: error });
  }
  const report: CopyReport = { rows: {}, runTokenKey: false };
  try {
    await client.query('BEGIN');
    const existing = await client.query<{ n: string }>('SELECT COUNT(*) AS n FROM runs');
    if (Number(existing.rows[0]?.n ?? 0) > 0) throw new ServerError('COPY_TARGET', `the target database ${describeDatabaseUrl(options.to)} already holds runs`);
    for (const table of TABLES) report.rows[table.name] = await copyTable(source, client, table.name, table.identity);
    // The identity sequences continue after the copied rows.
    for (const table of TABLES.filter((t) => t.identity)) {
      await client.query(`SELECT setval(pg_get_serial_sequence('${table.name}', 'seq'), COALESCE((SELECT MAX(seq) FROM ${table.name}), 0) + 1, false)`);
    }
    const keyPath = keyPathFor(options.from);
    if (existsSync(keyPath)) {
      await client.query('INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = excluded.value', ['run_token_private_key', readFileSync(keyPath, 'utf8')]);
      report.runTokenKey = true;
    }
    await client.query('COMMIT');
    return report;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  } finally {
    source.close();
    await client.end().catch(() => undefined);
  }
}

async function copyTable(source: DatabaseSync, client: pg.Client, table: string, identity: boolean): Promise<number> {
  let copied = 0;
  let after = -1;
  for (;;) {
    // rowid keyset: each batch is an index range, whatever the table's size.
    const rows = source.prepare(`SELECT rowid AS _rowid, * FROM ${table} WHERE rowid > ? ORDER BY rowid LIMIT ?`).all(after, BATCH) as Array<Record<string, unknown>>;
    if (rows.length === 0) return copied;
    after = Number(rows.at(-1)?.['_rowid']);
    const columns = Object.keys(rows[0] ?? {}).filter((column) => column !== '_rowid');
    const params: unknown[] = [];
    const tuples = rows.map((row) => `(${columns.map((column) => {
      params.push(row[column] ?? null);
      return `$${params.length}`;
    }).join(', ')})`);
    await client.query(
      `INSERT INTO ${table} (${columns.join(', ')}) ${identity ? 'OVERRIDING SYSTEM VALUE ' : ''}VALUES ${tuples.join(', ')}`,
      params,
    );
    copied += rows.length;
  }
}
