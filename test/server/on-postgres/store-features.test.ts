// The store-features suite on PostgreSQL (see use-postgres.ts).
import './use-postgres.ts';

await import('../store-features.test.ts');
