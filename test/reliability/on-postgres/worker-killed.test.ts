// The worker-killed reliability test on PostgreSQL (see test/server/on-postgres/use-postgres.ts).
import '../../server/on-postgres/use-postgres.ts';

await import('../worker-killed.test.ts');
