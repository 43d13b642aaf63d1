/**
 * Opens the store a `--db` value names: PostgreSQL for a `postgres://` URL,
 * SQLite for a path or `:memory:`.
 */
import { PostgresStore } from './postgres-store.ts';
import { SqliteStore } from './sqlite-store.ts';
import type { Store } from './store.ts';
import { storeKindOf } from './store-url.ts';

export async function openStore(db: string): Promise<Store> {
  return storeKindOf(db) === 'postgres' ? PostgresStore.open(db) : SqliteStore.open(db);
}
