// The claim suite on PostgreSQL (see use-postgres.ts).
import './use-postgres.ts';

await import('../claim.test.ts');
