/**
 * `firstFreePort` never picks a port that `fetch` (and browsers) refuse to
 * connect to, the Fetch standard's "bad ports": a server or health port on
 * one cannot be reached by the dashboard, `lanes submit` or a health check.
 */
import test from 'ava';
import { FETCH_BAD_PORTS, firstFreePort } from '../../src/cli/free-port.ts';

test("Node's fetch refuses a bad port before connecting", async (t) => {
  const error = await t.throwsAsync(fetch('http://127.0.0.1:6666/readyz'));
  t.regex(String((error?.cause as Error | undefined)?.message ?? error?.message), /bad port/i);
});

test('a free port is never a bad port: a run of them is skipped', async (t) => {
  const port = await firstFreePort(6665);
  t.false(FETCH_BAD_PORTS.has(port));
  t.true(port >= 6670, `got ${port}`);
  t.false(FETCH_BAD_PORTS.has(await firstFreePort(4045)));
});
