/**
 * The cost of verifying a run token the way the worker does (jose, RS256,
 * `exp` required: `verifyRunToken`) beside a bare synchronous `node:crypto`
 * check of the same token's signature, interleaved in one process so both see
 * the same machine. Reported with the claim path: the synchronous path would
 * be the faster one, and this is how much faster. Timings are never asserted.
 */
import { verify } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { generateRunKeyPair, signRunToken, verifyRunToken } from '../src/protocol/index.ts';
import { percentile } from './stats.ts';

export interface TokenVerifyResult {
  /** Verifications of each kind. */
  count: number;
  joseP50Us: number;
  syncP50Us: number;
}

export async function measureTokenVerify(options: { quick: boolean }): Promise<TokenVerifyResult> {
  const keys = await generateRunKeyPair();
  const now = Math.floor(Date.now() / 1000);
  const token = signRunToken(keys.privateKey, 'bench-run', { nowSeconds: now, expiresAtSeconds: now + 3600 });
  const [header, payload, signature] = token.split('.') as [string, string, string];
  const signed = Buffer.from(`${header}.${payload}`);
  const rounds = options.quick ? 5 : 20;
  const perRound = 200;
  const jose: number[] = [];
  const sync: number[] = [];
  for (let round = 0; round < rounds; round += 1) {
    for (let i = 0; i < perRound; i += 1) {
      const started = performance.now();
      await verifyRunToken(keys.publicKey, token);
      jose.push((performance.now() - started) * 1000);
    }
    for (let i = 0; i < perRound; i += 1) {
      const started = performance.now();
      if (!verify('sha256', signed, keys.publicKey, Buffer.from(signature, 'base64url'))) throw new Error('the bench token does not verify');
      JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
      sync.push((performance.now() - started) * 1000);
    }
  }
  return { count: jose.length, joseP50Us: percentile(jose, 50), syncP50Us: percentile(sync, 50) };
}

export function formatTokenVerify(result: TokenVerifyResult): string {
  return `Run-token verification on the worker (once per run, when \`WORKER_LIGHTNING_PUBLIC_KEY\` is set), ${result.count} of each, interleaved: jose \`verifyRunToken\` p50 ${result.joseP50Us.toFixed(0)} µs, a bare synchronous \`node:crypto\` signature check p50 ${result.syncP50Us.toFixed(0)} µs. The server's join does neither: it matches the token's SHA-256 kept at the claim.`;
}

if (import.meta.main) {
  const quick = process.env['BENCH_QUICK'] === '1' || process.argv.includes('--quick');
  process.stdout.write(`${formatTokenVerify(await measureTokenVerify({ quick }))}\n`);
}
