// The run-channel suite on PostgreSQL (see use-postgres.ts).
import './use-postgres.ts';

await import('../run-channel.test.ts');
