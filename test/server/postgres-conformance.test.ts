/**
 * The server's conformance tests again, on PostgreSQL: the claim, run
 * channel, API, socket and security suites run here with every server they
 * start on a fresh database of one real PostgreSQL cluster (started for this
 * file). Their SQLite run is their own file.
 */
import { usePostgres } from './store-harness.ts';

process.env['LANES_TEST_STORE'] = 'postgres';
// Start the cluster while tests are declared, so its stop is registered with AVA.
void usePostgres().catch(() => undefined);

await import('./claim.test.ts');
await import('./run-channel.test.ts');
await import('./api.test.ts');
await import('./security.test.ts');
await import('./disciplines.test.ts');
