// The security suite on PostgreSQL (see use-postgres.ts).
import './use-postgres.ts';

await import('../security.test.ts');
