/**
 * Imported first by each file of test/server/on-postgres/: every server that
 * `startServer` starts from here on gets a fresh database of one real
 * PostgreSQL cluster (started for the file, stopped after it), so the suite
 * the file imports next runs on PostgreSQL. One suite per file keeps as few
 * tests at once on one cluster as the SQLite run has.
 */
import { usePostgres } from '../store-harness.ts';

process.env['LANES_TEST_STORE'] = 'postgres';
// Start the cluster while tests are declared, so its stop is registered with AVA.
void usePostgres().catch(() => undefined);
