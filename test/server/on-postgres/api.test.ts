// The api suite on PostgreSQL (see use-postgres.ts).
import './use-postgres.ts';

await import('../api.test.ts');
