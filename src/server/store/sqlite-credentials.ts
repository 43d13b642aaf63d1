/**
 * Credentials and server settings on SQLite: small named JSON bodies the
 * server writes and reads by key.
 */
import type { SqliteConnection } from './sqlite-connection.ts';
import { str } from './store-rows.ts';

export function putCredential(db: SqliteConnection, id: string, bodyJson: string, now: number): void {
  db.run(
    'INSERT INTO credentials (id, body, updated_at) VALUES (?, ?, ?) ON CONFLICT (id) DO UPDATE SET body = excluded.body, updated_at = excluded.updated_at',
    id, bodyJson, now,
  );
}

export function getCredential(db: SqliteConnection, id: string): unknown {
  const row = db.get('SELECT body FROM credentials WHERE id = ?', id);
  return row ? (JSON.parse(str(row, 'body')) as unknown) : undefined;
}

export function putSettingOnce(db: SqliteConnection, name: string, value: string): string {
  db.run('INSERT INTO settings (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING', name, value);
  return str(db.get('SELECT value FROM settings WHERE name = ?', name) ?? { value }, 'value');
}
