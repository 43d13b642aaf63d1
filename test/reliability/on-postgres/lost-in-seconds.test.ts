// The lost-in-seconds reliability test on PostgreSQL (see test/server/on-postgres/use-postgres.ts).
import '../../server/on-postgres/use-postgres.ts';

await import('../lost-in-seconds.test.ts');
