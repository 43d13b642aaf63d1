/**
 * The schema, as numbered migrations applied in order at start. A migration
 * is never edited once released: add a new one. `schema_migrations` records
 * what ran, so opening an existing file only applies what is new.
 */
import type { DatabaseSync } from 'node:sqlite';

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'initial schema',
    sql: `
      CREATE TABLE runs (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
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
        run_timeout_ms INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        enqueued_at INTEGER NOT NULL,
        available_at INTEGER NOT NULL,
        claimed_at INTEGER,
        started_at INTEGER,
        finished_at INTEGER,
        lease_expires_at INTEGER,
        lease_mode TEXT,
        token_hash TEXT,
        final_dataclip_id TEXT,
        final_state TEXT,
        webhook_response TEXT,
        versions TEXT
      );
      CREATE INDEX runs_available ON runs (state, queue, priority DESC, enqueued_at, seq);
      CREATE INDEX runs_lease ON runs (state, lease_expires_at);
      CREATE TABLE run_attempts (
        run_id TEXT NOT NULL,
        attempt INTEGER NOT NULL,
        worker_id TEXT,
        worker_name TEXT,
        claimed_at INTEGER NOT NULL,
        started_at INTEGER,
        finished_at INTEGER,
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
        created_at INTEGER NOT NULL
      );
      CREATE TABLE steps (
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
        duration_ms REAL,
        thread_id INTEGER,
        started_at INTEGER NOT NULL,
        finished_at INTEGER
      );
      CREATE INDEX steps_run ON steps (run_id, started_at);
      CREATE TABLE log_lines (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
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
        updated_at INTEGER NOT NULL
      );
      CREATE TABLE workers (
        id TEXT PRIMARY KEY,
        name TEXT,
        capacity INTEGER NOT NULL,
        queues TEXT NOT NULL,
        connected_at INTEGER NOT NULL,
        last_seen_at INTEGER NOT NULL,
        disconnected_at INTEGER
      );
      CREATE TABLE queues (
        name TEXT PRIMARY KEY,
        suspended INTEGER NOT NULL DEFAULT 0,
        updated_at INTEGER NOT NULL
      );
    `,
  },
  {
    version: 2,
    name: 'claim order index for wildcard chains',
    // A `*` lane takes the best available run of any queue: without this index
    // each claim sorted every waiting run (a temporary B-tree), so the claim
    // cost grew with the queue depth.
    sql: `CREATE INDEX runs_available_any ON runs (state, priority DESC, enqueued_at, seq);`,
  },
  {
    version: 3,
    name: 'retention and keyset listing indexes, settings',
    // Retention finds finished runs by age and deletes what hangs off them by
    // run id; `GET /api/runs` pages by seq within a queue or a state.
    sql: `
      CREATE INDEX runs_finished ON runs (finished_at) WHERE finished_at IS NOT NULL;
      CREATE INDEX runs_queue_seq ON runs (queue, seq);
      CREATE INDEX runs_state_seq ON runs (state, seq);
      CREATE INDEX dataclips_run ON dataclips (run_id);
      CREATE INDEX event_replies_run ON event_replies (run_id);
      CREATE TABLE settings (
        name TEXT PRIMARY KEY,
        value TEXT NOT NULL
      );
    `,
  },
  {
    version: 4,
    name: 'lane of each attempt, for the dashboard',
    // The dashboard draws each attempt on the row of the lane that claimed it
    // (the claim's chain, joined with '>'); its timeline reads recent and
    // open attempts by claim and finish time.
    sql: `
      ALTER TABLE run_attempts ADD COLUMN lane TEXT;
      CREATE INDEX run_attempts_claimed ON run_attempts (claimed_at);
      CREATE INDEX run_attempts_finished ON run_attempts (finished_at);
    `,
  },
  {
    version: 5,
    name: 'memory of each attempt, for the dashboard',
    // A memory claim counts each run's need against its lane's share; the
    // dashboard shows it in the run's slot.
    sql: `ALTER TABLE run_attempts ADD COLUMN memory_mb INTEGER;`,
  },
  {
    version: 6,
    name: 'listing indexes for a queue and state together, and for dead letters',
    // GET /api/runs?queue=&state= walked a whole queue when few of its runs had
    // that state, and ?dead_letter= every run: each page is now one index range.
    sql: `
      CREATE INDEX runs_queue_state_seq ON runs (queue, state, seq);
      CREATE INDEX runs_dead_letter_seq ON runs (dead_letter, seq);
    `,
  },
];

/** Applies every migration newer than the file's version, each in its own transaction. Returns the versions applied. */
export function migrate(db: DatabaseSync): number[] {
  db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)');
  const row = db.prepare('SELECT COALESCE(MAX(version), 0) AS version FROM schema_migrations').get();
  const current = Number(row?.['version'] ?? 0);
  const applied: number[] = [];
  for (const migration of MIGRATIONS) {
    if (migration.version <= current) continue;
    db.exec('BEGIN IMMEDIATE');
    try {
      db.exec(migration.sql);
      db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)').run(migration.version, migration.name, Date.now());
      db.exec('COMMIT');
    } catch (error) {
      db.exec('ROLLBACK');
      throw error;
    }
    applied.push(migration.version);
  }
  return applied;
}
