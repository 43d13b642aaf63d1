/**
 * Which store a `--db` value names, and how to name it in a message or a
 * log line without its password.
 */
import type { StoreKind } from './store.ts';

/** `postgres://` or `postgresql://` picks PostgreSQL; anything else is a SQLite path (or `:memory:`). */
export function storeKindOf(db: string): StoreKind {
  return /^postgres(ql)?:\/\//i.test(db) ? 'postgres' : 'sqlite';
}

/** The URL with any password replaced by `***`; a SQLite path as it is. */
export function describeDatabaseUrl(db: string): string {
  if (storeKindOf(db) !== 'postgres') return db;
  try {
    const url = new URL(db);
    if (url.password !== '') url.password = '***';
    return url.toString();
  } catch {
    return 'postgres://(unparsable URL)';
  }
}
