/**
 * The PostgreSQL schema, as numbered migrations like the SQLite ones
 * (sqlite-migrations.ts): the same tables and columns, so rows map to
 * records the same way (store-rows.ts). Times are BIGINT epoch milliseconds,
 * JSON is TEXT as in SQLite (the store never queries inside it).
 *
 * Several replicas may start at once: every start takes one transaction-level
 * advisory lock before reading `schema_migrations`, so one replica migrates
 * and the others find the work done. DDL is transactional in PostgreSQL: a
 * migration that fails leaves nothing behind.
 */
import type { PoolClient } from 'pg';
import type { Migration } from './sqlite-migrations.ts';

/** An arbitrary constant: the advisory lock key of "Lanes migrates this database". */
const MIGRATION_LOCK_KEY = 7_207_001;

export const POSTGRES_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'initial schema',
    sql: `
      CREATE TABLE runs (
        seq BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
        id TEXT PRIMARY KEY,
        queue TEXT NOT NULL,
        priority INTEGER NOT NULL DEFAULT 0,
        state TEXT NOT NULL,
        reason TEXT,
        error_type TEXT,
        error_message TEXT,
        attempts INTEGER NOT NULL DEFAULT 0,
        max_attempts INTEGER NOT NULL DEFAULT 1,
        dead_letter INTEGER NOT NULL DEFAULT 0,
        idempotency_key TEXT UNIQUE,
        worker_id TEXT,
        worker_name TEXT,
        plan TEXT NOT NULL,
        dataclip_id TEXT NOT NULL,
        run_timeout_ms BIGINT NOT NULL,
        created_at BIGINT NOT NULL,
        enqueued_at BIGINT NOT NULL,
        available_at BIGINT NOT NULL,
        claimed_at BIGINT,
        started_at BIGINT,
        finished_at BIGINT,
        lease_expires_at BIGINT,
        lease_mode TEXT,
        token_hash TEXT,
        final_dataclip_id TEXT,
        final_state TEXT,
        webhook_response TEXT,
        versions TEXT
      );
      -- Claim order, per queue and across queues; only available runs are indexed.
      CREATE INDEX runs_available ON runs (queue, priority DESC, enqueued_at, seq) WHERE state = 'available';
      CREATE INDEX runs_available_any ON runs (priority DESC, enqueued_at, seq) WHERE state = 'available';
      CREATE INDEX runs_lease ON runs (lease_expires_at) WHERE state IN ('claimed', 'started');
      CREATE INDEX runs_finished ON runs (finished_at) WHERE finished_at IS NOT NULL;
      CREATE INDEX runs_queue_seq ON runs (queue, seq);
      CREATE INDEX runs_state_seq ON runs (state, seq);
      CREATE TABLE run_attempts (
        run_id TEXT NOT NULL,
        attempt INTEGER NOT NULL,
        worker_id TEXT,
        worker_name TEXT,
        claimed_at BIGINT NOT NULL,
        started_at BIGINT,
        finished_at BIGINT,
        state TEXT NOT NULL,
        error_type TEXT,
        error_message TEXT,
        PRIMARY KEY (run_id, attempt)
      );
      CREATE TABLE dataclips (
        id TEXT PRIMARY KEY,
        run_id TEXT,
        type TEXT NOT NULL,
        body TEXT NOT NULL,
        created_at BIGINT NOT NULL
      );
      CREATE INDEX dataclips_run ON dataclips (run_id);
      CREATE TABLE steps (
        seq BIGINT GENERATED ALWAYS AS IDENTITY,
        id TEXT PRIMARY KEY,
        run_id TEXT NOT NULL,
        attempt INTEGER NOT NULL,
        job_id TEXT NOT NULL,
        input_dataclip_id TEXT,
        output_dataclip_id TEXT,
        output_dataclip_error TEXT,
        reason TEXT,
        error_type TEXT,
        error_message TEXT,
        mem TEXT,
        duration_ms DOUBLE PRECISION,
        thread_id INTEGER,
        started_at BIGINT NOT NULL,
        finished_at BIGINT
      );
      CREATE INDEX steps_run ON steps (run_id, started_at);
      CREATE TABLE log_lines (
        seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        run_id TEXT NOT NULL,
        attempt INTEGER NOT NULL,
        step_id TEXT,
        level TEXT NOT NULL,
        source TEXT NOT NULL,
        message TEXT NOT NULL,
        timestamp TEXT NOT NULL
      );
      CREATE INDEX log_lines_run ON log_lines (run_id, seq);
      CREATE TABLE event_replies (
        run_id TEXT NOT NULL,
        key TEXT NOT NULL,
        reply TEXT NOT NULL,
        PRIMARY KEY (run_id, key)
      );
      CREATE TABLE credentials (
        id TEXT PRIMARY KEY,
        body TEXT NOT NULL,
        updated_at BIGINT NOT NULL
      );
      CREATE TABLE workers (
        id TEXT PRIMARY KEY,
        name TEXT,
        capacity INTEGER NOT NULL,
        queues TEXT NOT NULL,
        connected_at BIGINT NOT NULL,
        last_seen_at BIGINT NOT NULL,
        disconnected_at BIGINT
      );
      CREATE TABLE queues (
        name TEXT PRIMARY KEY,
        suspended INTEGER NOT NULL DEFAULT 0,
        updated_at BIGINT NOT NULL
      );
      CREATE TABLE settings (
        name TEXT PRIMARY KEY,
        value TEXT NOT NULL
      );
    `,
  },
  {
    version: 2,
    name: 'lane of each attempt, for the dashboard',
    // As SQLite's migration 4: the claim's chain per attempt, and the two
    // indexes the dashboard's timeline reads by.
    sql: `
      ALTER TABLE run_attempts ADD COLUMN lane TEXT;
      CREATE INDEX run_attempts_claimed ON run_attempts (claimed_at);
      CREATE INDEX run_attempts_finished ON run_attempts (finished_at);
    `,
  },
  {
    version: 3,
    name: 'memory of each attempt, for the dashboard',
    // As SQLite's migration 5.
    sql: `ALTER TABLE run_attempts ADD COLUMN memory_mb INTEGER;`,
  },
  {
    version: 4,
    name: 'listing indexes for a queue and state together, and for dead letters',
    // As SQLite's migration 6.
    sql: `
      CREATE INDEX runs_queue_state_seq ON runs (queue, state, seq);
      CREATE INDEX runs_dead_letter_seq ON runs (dead_letter, seq);
    `,
  },
];

/** Applies every migration newer than the database's version, under the advisory lock, in one transaction. Returns the versions applied. */
export async function migratePostgres(client: PoolClient): Promise<number[]> {
  await client.query('BEGIN');
  try {
    await client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK_KEY]);
    await client.query('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)');
    const result = await client.query<{ version: number }>('SELECT COALESCE(MAX(version), 0) AS version FROM schema_migrations');
    const current = Number(result.rows[0]?.version ?? 0);
    const applied: number[] = [];
    for (const migration of POSTGRES_MIGRATIONS) {
      if (migration.version <= current) continue;
      await client.query(migration.sql);
      await client.query('INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)', [migration.version, migration.name, Date.now()]);
      applied.push(migration.version);
    }
    await client.query('COMMIT');
    return applied;
  } catch (error) {
    await client.query('ROLLBACK');
    throw error;
  }
}
