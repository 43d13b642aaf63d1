/**
 * Opens the store a `--db` value names: PostgreSQL for a `postgres://` URL,
 * SQLite for a path or `:memory:`.
 */
import type { Logger } from 'pino';
import { PostgresStore } from './postgres-store.ts';
import { SqliteStore } from './sqlite-store.ts';
import type { Store } from './store.ts';
import { storeKindOf } from './store-url.ts';

/** `logger` logs the store's state changes (open → closed). */
export async function openStore(db: string, logger: Logger): Promise<Store> {
  return storeKindOf(db) === 'postgres' ? PostgresStore.open(db, logger) : SqliteStore.open(db, logger);
}
