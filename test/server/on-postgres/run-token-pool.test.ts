// The run token pool suite on PostgreSQL (see use-postgres.ts).
import './use-postgres.ts';

await import('../run-token-pool.test.ts');
