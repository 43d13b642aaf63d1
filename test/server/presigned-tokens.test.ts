/**
 * Run tokens signed ahead: right after a submission the server signs the
 * run's token, and the claim that hands the run out takes it instead of
 * signing. Real server on port 0, real phoenix client, real RS256 keys.
 */
import test from 'ava';
import { generateRunKeyPair, importRunPrivateKey, importRunPublicKey, verifyRunToken } from '../../src/protocol/index.ts';
import { PresignedTokens } from '../../src/server/presigned-tokens.ts';
import type { LanesServer } from '../../src/server/index.ts';
import { claim, connectWorker, join, joinQueue, joinRun, push, startServer, submitRun, testLogger, waitFor } from './helpers.ts';

interface TokenClaims {
  id: string;
  iat: number;
  nbf: number;
  exp: number;
  jti: string;
}

function claimsOf(token: string): TokenClaims {
  return JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as TokenClaims;
}

/** `lanes_run_tokens_total` by `signed`. */
async function tokenCounts(server: LanesServer): Promise<{ ahead: number; at_claim: number }> {
  const { values } = await server.metrics.runTokens.get();
  const count = (signed: string) => values.find((value) => value.labels['signed'] === signed)?.value ?? 0;
  return { ahead: count('ahead'), at_claim: count('at_claim') };
}

const ts = () => `${Date.now()}000`;

/** Waits until `count` tokens have been signed ahead (the signature is computed off the event loop, after the submit's answer). */
async function signedAhead(server: LanesServer, count: number): Promise<void> {
  await waitFor(async () => ((await server.metrics.runTokensSignedAhead.get()).values[0]?.value ?? 0) >= count, { message: `${count} tokens signed ahead` });
}

test('the claim hands out the token signed after the submit; it verifies with the server key, opens the run, and its exp covers timeout + grace from the claim', async (t) => {
  const runTimeoutMs = 60_000;
  const graceMs = 10_000;
  const server = await startServer(t, { runTimeoutMs, graceMs });
  const socket = await connectWorker(t, server);
  const { channel } = await joinQueue(socket);
  const submittedAt = Date.now();
  const runId = await submitRun(server);
  await signedAhead(server, 1);
  const claimedAt = Date.now();
  const [run] = await claim(channel, ['*']);
  t.is(run?.id, runId);
  if (run === undefined) return;
  t.deepEqual(await tokenCounts(server), { ahead: 1, at_claim: 0 });
  const verified = await verifyRunToken(await importRunPublicKey(server.publicKeyPem), run.token);
  t.is(verified.runId, runId);
  const claims = claimsOf(run.token);
  t.true(claims.iat >= Math.floor(submittedAt / 1000) && claims.iat <= Math.floor(claimedAt / 1000), 'signed between the submit and the claim');
  t.is(claims.nbf, claims.iat);
  t.true(claims.exp >= Math.ceil((claimedAt + runTimeoutMs + graceMs) / 1000), 'exp covers the timeout and grace from the claim');
  t.regex(claims.jti, /^[0-9a-f-]{36}$/);
  // Its hash is what the claim stored: the token opens the run's channel.
  const runChannel = await joinRun(socket, run);
  t.is((await push(runChannel, 'run:start', { timestamp: ts() })).status, 'ok');
});

test('a token past its age in the cache is not used: the claim signs a fresh one', async (t) => {
  const server = await startServer(t, { presignedTokenMaxAgeMs: 20 });
  const socket = await connectWorker(t, server);
  const { channel } = await joinQueue(socket);
  const submittedAt = Date.now();
  await submitRun(server);
  await signedAhead(server, 1);
  // The age is the behaviour under test: wait until the pre-signed token is older than it.
  await waitFor(() => Date.now() - submittedAt > 200, { intervalMs: 20, message: 'the cache age to pass' });
  const [run] = await claim(channel, ['*']);
  if (run === undefined) return t.fail('no run claimed');
  t.deepEqual(await tokenCounts(server), { ahead: 0, at_claim: 1 });
  t.is((await verifyRunToken(await importRunPublicKey(server.publicKeyPem), run.token)).runId, run.id);
  const runChannel = await joinRun(socket, run);
  t.is((await push(runChannel, 'run:start', { timestamp: ts() })).status, 'ok');
});

test('with presignedTokens 0 every token is signed at its claim', async (t) => {
  const server = await startServer(t, { presignedTokens: 0 });
  const { channel } = await joinQueue(await connectWorker(t, server));
  await submitRun(server);
  t.is((await claim(channel, ['*'])).length, 1);
  t.deepEqual(await tokenCounts(server), { ahead: 0, at_claim: 1 });
  t.is((await server.metrics.runTokensSignedAhead.get()).values[0]?.value ?? 0, 0);
});

test('a retried run gets a fresh token signed at its claim; the first attempt’s token no longer opens the run', async (t) => {
  const server = await startServer(t, { retryBackoffBaseMs: 0, workAvailableDebounceMs: 0 });
  const socket = await connectWorker(t, server);
  const { channel: queue } = await joinQueue(socket);
  const runId = await submitRun(server, { max_attempts: 2 });
  await signedAhead(server, 1);
  const [first] = await claim(queue, ['*']);
  if (first === undefined) return t.fail('no first attempt');
  const run = await joinRun(socket, first);
  await push(run, 'run:start', { timestamp: ts() });
  t.is((await push(run, 'run:complete', { reason: 'crash', error_type: 'ProcessCrashError', error_message: 'boom' })).status, 'ok');
  await push(run, 'phx_leave');
  const second = await waitFor(async () => (await claim(queue, ['*']))[0], { message: 'the retry to be claimable' });
  t.is(second.id, runId);
  t.not(second.token, first.token);
  t.not(claimsOf(second.token).jti, claimsOf(first.token).jti);
  t.deepEqual(await tokenCounts(server), { ahead: 1, at_claim: 1 });
  const stale = await join(socket, `run:${runId}`, { token: first.token });
  t.is(stale.status, 'error', 'the first token opens nothing now');
  t.is((await join(socket, `run:${runId}`, { token: second.token })).status, 'ok');
});

test('the cache holds a bounded number of tokens, each used once, never for a retry, and only within its age', async (t) => {
  const keys = await generateRunKeyPair();
  const privateKey = await importRunPrivateKey(keys.privateKeyPem);
  const publicKey = await importRunPublicKey(keys.publicKeyPem);
  let now = Date.now();
  const tokens = new PresignedTokens({ privateKey, graceMs: 10_000, maxEntries: 4, maxAgeMs: 2_000, logger: testLogger(), now: () => now });
  for (let i = 0; i < 10; i += 1) tokens.presign(`run-${i}`, 60_000);
  t.is(tokens.size, 4, 'a burst is not signed wholesale');
  const taken = tokens.tokenFor({ id: 'run-0', attempt: 1, runTimeoutMs: 60_000 }, now + 1_000);
  t.true(taken.presigned);
  t.is((await verifyRunToken(publicKey, taken.token)).runId, 'run-0');
  t.false(tokens.tokenFor({ id: 'run-0', attempt: 1, runTimeoutMs: 60_000 }, now + 1_000).presigned, 'one use');
  t.false(tokens.tokenFor({ id: 'run-4', attempt: 1, runTimeoutMs: 60_000 }, now).presigned, 'past the bound: signed at the claim');
  t.false(tokens.tokenFor({ id: 'run-1', attempt: 2, runTimeoutMs: 60_000 }, now).presigned, 'a retry never takes one');
  t.false(tokens.tokenFor({ id: 'run-2', attempt: 1, runTimeoutMs: 60_000 }, now + 2_001).presigned, 'past its age');
  t.false(tokens.tokenFor({ id: 'run-3', attempt: 1, runTimeoutMs: 120_000 }, now).presigned, 'an exp that would not cover a longer timeout');
  now += 3_000;
  tokens.presign('late', 60_000);
  t.is(tokens.size, 1, 'old tokens are pruned');
  tokens.stop();
  tokens.presign('after-stop', 60_000);
  t.is(tokens.size, 0);
});
