// The server-restart reliability test on PostgreSQL (see test/server/on-postgres/use-postgres.ts).
import '../../server/on-postgres/use-postgres.ts';

await import('../server-restart.test.ts');
