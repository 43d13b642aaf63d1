/**
 * Stores for tests, of either kind: SQLite in memory, or PostgreSQL in a
 * fresh database of one throwaway cluster per test process (started on first
 * use, stopped when AVA's worker for the file ends). Every store is closed at
 * the test's teardown.
 */
import type { ExecutionContext } from 'ava';
import test from 'ava';
import { PostgresStore } from '../../src/server/store/postgres-store.ts';
import { SqliteStore } from '../../src/server/store/sqlite-store.ts';
import { pino } from 'pino';
import type { Store, StoreKind } from '../../src/server/store/store.ts';
import { startPostgres } from '../fixtures/postgres-cluster.ts';
import type { PostgresCluster } from '../fixtures/postgres-cluster.ts';

export const STORE_KINDS: readonly StoreKind[] = ['sqlite', 'postgres'];

let cluster: Promise<PostgresCluster> | undefined;

/**
 * The process's PostgreSQL cluster. The first call registers its stop with
 * `test.after.always`, so call it (or `usePostgres()`) while tests are being
 * declared, not only from inside a test.
 */
export function usePostgres(): Promise<PostgresCluster> {
  if (cluster === undefined) {
    cluster = startPostgres();
    test.after.always(async () => {
      await (await cluster)?.stop();
    });
  }
  return cluster;
}

/** A URL of a new, empty database on the process's cluster. */
export async function postgresDatabase(): Promise<string> {
  return (await usePostgres()).createDatabase();
}

/** The stores' logger (helpers.ts imports this file, so its testLogger is not imported here). */
function storeLogger(): pino.Logger {
  return pino({ level: process.env['LANES_TEST_LOG'] ?? 'silent' });
}

/** A fresh store of `kind`, closed at teardown. */
export async function openTestStore(t: ExecutionContext, kind: StoreKind, url?: string): Promise<Store> {
  const store = kind === 'sqlite' ? SqliteStore.open(':memory:', storeLogger()) : await PostgresStore.open(url ?? (await postgresDatabase()), storeLogger());
  t.teardown(() => store.close());
  return store;
}
