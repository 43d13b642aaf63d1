// The disciplines suite on PostgreSQL (see use-postgres.ts).
import './use-postgres.ts';

await import('../disciplines.test.ts');
