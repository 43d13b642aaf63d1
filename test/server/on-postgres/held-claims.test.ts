// The held claims suite on PostgreSQL (see use-postgres.ts): there a claim's first try is a real round trip,
// so a run is often stored while it reads the queues.
import './use-postgres.ts';

await import('../held-claims.test.ts');
