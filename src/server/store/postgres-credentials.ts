/**
 * Credentials and server settings on PostgreSQL: small named JSON bodies the
 * server writes and reads by key.
 */
import type { PostgresConnection } from './postgres-connection.ts';
import { str } from './store-rows.ts';

export async function putCredential(db: PostgresConnection, id: string, bodyJson: string, now: number): Promise<void> {
  await db.run(
    'INSERT INTO credentials (id, body, updated_at) VALUES ($1, $2, $3) ON CONFLICT (id) DO UPDATE SET body = excluded.body, updated_at = excluded.updated_at',
    [id, bodyJson, now],
  );
}

export async function getCredential(db: PostgresConnection, id: string): Promise<unknown> {
  const row = await db.get('SELECT body FROM credentials WHERE id = $1', [id]);
  return row ? (JSON.parse(str(row, 'body')) as unknown) : undefined;
}

export async function putSettingOnce(db: PostgresConnection, name: string, value: string): Promise<string> {
  await db.run('INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING', [name, value]);
  return str((await db.get('SELECT value FROM settings WHERE name = $1', [name])) ?? { value }, 'value');
}
