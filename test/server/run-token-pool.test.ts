/**
 * Run identities made in idle time: the server signs tokens for fresh run ids
 * before any run exists, a submission takes one of those ids, and the claim
 * that hands the run out carries the token made with it. Real server on port
 * 0, real phoenix client, the real store, real RS256 keys; the pool itself
 * with real timers, counted.
 */
import test from 'ava';
import { generateRunKeyPair, importRunPrivateKey, importRunPublicKey, verifyRunToken } from '../../src/protocol/index.ts';
import { RunTokenPool } from '../../src/server/run-token-pool.ts';
import type { RefillTimers } from '../../src/server/run-token-pool.ts';
import type { LanesServer } from '../../src/server/index.ts';
import { claim, connectWorker, join, joinQueue, joinRun, push, simplePlan, startServer, submitRun, testLogger, waitFor } from './helpers.ts';

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

/**
 * `tokenCounts` once `claims` claimed runs are counted: the server counts a claim's tokens after it
 * sent the claim's reply (off the run's way to its thread), so a read right after the reply can come first.
 */
async function claimedTokenCounts(server: LanesServer, claims: number): Promise<{ ahead: number; at_claim: number }> {
  return waitFor(
    async () => {
      const counts = await tokenCounts(server);
      return counts.ahead + counts.at_claim >= claims ? counts : null;
    },
    { message: `the tokens of ${claims} claimed runs to be counted` },
  );
}

/** Tokens signed for the pool so far (`lanes_run_tokens_signed_ahead_total`). */
async function signedAhead(server: LanesServer): Promise<number> {
  return (await server.metrics.runTokensSignedAhead.get()).values[0]?.value ?? 0;
}

/** Identities ready for a submission (`lanes_run_token_pool`). */
async function pooled(server: LanesServer): Promise<number> {
  const metric = server.metrics.registry.getSingleMetric('lanes_run_token_pool');
  if (metric === undefined) throw new Error('no lanes_run_token_pool metric');
  return (await metric.get()).values[0]?.value ?? 0;
}

async function poolFilled(server: LanesServer, size: number): Promise<void> {
  await waitFor(async () => (await pooled(server)) === size, { message: `the pool to hold ${size}` });
}

const ts = () => `${Date.now()}000`;

test('a submitted run takes its id from the pool; its claim carries the token made with it, which verifies, opens the run, and covers timeout + grace from the claim', async (t) => {
  const runTimeoutMs = 60_000;
  const graceMs = 10_000;
  // One identity: once a run holds it, nothing more is signed until its claim, so the claim's token can only be that one.
  const server = await startServer(t, { runTimeoutMs, graceMs, presignedTokens: 1 });
  const socket = await connectWorker(t, server);
  const { channel } = await joinQueue(socket);
  await poolFilled(server, 1);
  t.is(await signedAhead(server), 1);
  const submittedAt = Date.now();
  const runId = await submitRun(server);
  t.is(await pooled(server), 0, 'the submission took the identity');
  // A quiet spell longer than the refill's (50 ms) with the run unclaimed: its identity still counts
  // against the pool's bound, so nothing is signed. Read before the claim: once the run is claimed the
  // pool may refill after its next quiet spell, which on a loaded machine can come before a later read.
  await new Promise((resolve) => setTimeout(resolve, 200));
  t.is(await signedAhead(server), 1, 'nothing was signed between the submission and the claim');
  const claimedAt = Date.now();
  const [run] = await claim(channel, ['*']);
  t.is(run?.id, runId);
  if (run === undefined) return;
  t.deepEqual(await claimedTokenCounts(server, 1), { ahead: 1, at_claim: 0 });
  const verified = await verifyRunToken(await importRunPublicKey(server.publicKeyPem), run.token);
  t.is(verified.runId, runId);
  const claims = claimsOf(run.token);
  t.true(claims.iat <= Math.floor(submittedAt / 1000), 'signed before the run was submitted');
  t.is(claims.nbf, claims.iat);
  t.true(claims.exp >= Math.ceil((claimedAt + runTimeoutMs + graceMs) / 1000), 'exp covers the timeout and grace from the claim');
  t.true(claims.exp <= Math.ceil((submittedAt + server.options.presignedTokenMaxAgeMs + runTimeoutMs + graceMs) / 1000), 'exp: no more than the time it may wait, timeout and grace');
  t.regex(claims.jti, /^[0-9a-f-]{36}$/);
  // Its hash is what the claim stored: the token opens the run's channel.
  const runChannel = await joinRun(socket, run);
  t.is((await push(runChannel, 'run:start', { timestamp: ts() })).status, 'ok');
  // The slot is free again: the pool refills in the quiet after the claim.
  await poolFilled(server, 1);
  t.is(await signedAhead(server), 2);
});

test('a run whose timeout is longer than the pool tokens cover leaves the pool alone and is signed at its claim', async (t) => {
  const server = await startServer(t, { runTimeoutMs: 60_000, graceMs: 10_000, presignedTokens: 2 });
  const { channel } = await joinQueue(await connectWorker(t, server));
  await poolFilled(server, 2);
  const longMs = 60 * 60_000;
  const runId = await submitRun(server, { plan: { ...simplePlan(), options: { run_timeout_ms: longMs } } });
  t.is(await pooled(server), 2, 'no identity taken');
  const claimedAt = Date.now();
  const [run] = await claim(channel, ['*']);
  if (run === undefined) return t.fail('no run claimed');
  t.is(run.id, runId);
  t.deepEqual(await claimedTokenCounts(server, 1), { ahead: 0, at_claim: 1 });
  const claims = claimsOf(run.token);
  t.true(claims.exp >= Math.ceil((claimedAt + longMs + 10_000) / 1000), 'exp covers the long timeout from the claim');
  t.is((await verifyRunToken(await importRunPublicKey(server.publicKeyPem), run.token)).runId, runId);
});

test('with presignedTokens 0 nothing is pooled and every token is signed at its claim', async (t) => {
  const server = await startServer(t, { presignedTokens: 0 });
  const { channel } = await joinQueue(await connectWorker(t, server));
  await submitRun(server);
  t.is((await claim(channel, ['*'])).length, 1);
  t.deepEqual(await claimedTokenCounts(server, 1), { ahead: 0, at_claim: 1 });
  t.is(await signedAhead(server), 0);
  t.is(await pooled(server), 0);
});

test('a retried run gets a fresh token signed at its claim; the first attempt’s token no longer opens the run', async (t) => {
  const server = await startServer(t, { retryBackoffBaseMs: 0, workAvailableDebounceMs: 0, presignedTokens: 2 });
  const socket = await connectWorker(t, server);
  const { channel: queue } = await joinQueue(socket);
  await poolFilled(server, 2);
  const runId = await submitRun(server, { max_attempts: 2 });
  const [first] = await claim(queue, ['*']);
  if (first === undefined) return t.fail('no first attempt');
  t.deepEqual(await claimedTokenCounts(server, 1), { ahead: 1, at_claim: 0 });
  const run = await joinRun(socket, first);
  await push(run, 'run:start', { timestamp: ts() });
  t.is((await push(run, 'run:complete', { reason: 'crash', error_type: 'ProcessCrashError', error_message: 'boom' })).status, 'ok');
  await push(run, 'phx_leave');
  const second = await waitFor(async () => (await claim(queue, ['*']))[0], { message: 'the retry to be claimable' });
  t.is(second.id, runId);
  t.not(second.token, first.token);
  t.not(claimsOf(second.token).jti, claimsOf(first.token).jti);
  t.deepEqual(await claimedTokenCounts(server, 2), { ahead: 1, at_claim: 1 });
  const stale = await join(socket, `run:${runId}`, { token: first.token });
  t.is(stale.status, 'error', 'the first token opens nothing now');
  t.is((await join(socket, `run:${runId}`, { token: second.token })).status, 'ok');
});

test('a burst takes what the pool holds, the rest is signed at the claim; the pool refills in the quiet and never holds more than its bound', async (t) => {
  const server = await startServer(t, { presignedTokens: 3 });
  const { channel } = await joinQueue(await connectWorker(t, server));
  await poolFilled(server, 3);
  for (let i = 0; i < 5; i += 1) await submitRun(server);
  t.is(await pooled(server), 0);
  const runs = await claim(channel, ['*'], 5);
  t.is(runs.length, 5);
  t.deepEqual(await claimedTokenCounts(server, 5), { ahead: 3, at_claim: 2 });
  await poolFilled(server, 3);
  t.is(await signedAhead(server), 6);
  // Refilled to its bound, the pool stays there: sample it over a few refill delays.
  for (let i = 0; i < 10; i += 1) {
    t.true((await pooled(server)) <= 3);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  t.is(await signedAhead(server), 6, 'a full, fresh pool signs nothing');
  // Stopping the server stops its pool: nothing held, no refill left (the pool's own test counts its timers).
  await server.stop();
  t.is(await pooled(server), 0);
});

/** Node's timers, unref'd as the pool's own, with the ones set and not yet fired or cleared counted. */
function countedTimers(): RefillTimers & { readonly live: Set<NodeJS.Timeout> } {
  const live = new Set<NodeJS.Timeout>();
  return {
    live,
    set(callback, delayMs) {
      const timer: NodeJS.Timeout = setTimeout(() => {
        live.delete(timer);
        callback();
      }, delayMs).unref();
      live.add(timer);
      return timer;
    },
    clear(timer) {
      live.delete(timer);
      clearTimeout(timer);
    },
  };
}

async function keys(): Promise<{ privateKey: Awaited<ReturnType<typeof importRunPrivateKey>>; publicKey: Awaited<ReturnType<typeof importRunPublicKey>> }> {
  const pair = await generateRunKeyPair();
  return { privateKey: await importRunPrivateKey(pair.privateKeyPem), publicKey: await importRunPublicKey(pair.publicKeyPem) };
}

test('the pool fills in idle time within its bound, a token is used once, never for a retry, and only within its age; stop leaves no timer', async (t) => {
  const { privateKey, publicKey } = await keys();
  const timers = countedTimers();
  let now = Date.now();
  // idleMs 0: the fake clock does not move by itself, so any quiet is quiet enough.
  const pool = new RunTokenPool({ privateKey, runTimeoutMs: 60_000, graceMs: 10_000, size: 4, maxAgeMs: 2_000, idleMs: 0, logger: testLogger(), now: () => now, timers });
  t.teardown(() => pool.stop());
  t.is(pool.takeRunId({ runTimeoutMs: 60_000, dueNow: true }).length, 36, 'before start: a plain id');
  t.is(timers.live.size, 0);
  pool.start();
  await waitFor(() => pool.pooled === 4, { message: 'the pool to fill' });
  t.is(pool.pooled, 4);
  const ids = [0, 1, 2, 3, 4].map(() => pool.takeRunId({ runTimeoutMs: 60_000, dueNow: true }));
  t.is(pool.pooled, 0);
  t.is(pool.issued, 4, 'the fifth run got a plain id');
  const [id0, id1, id2, id3, id4] = ids as [string, string, string, string, string];
  const taken = pool.tokenFor({ id: id0, attempt: 1, runTimeoutMs: 60_000 }, now + 1_000);
  t.true(taken.presigned);
  t.is((await verifyRunToken(publicKey, taken.token)).runId, id0);
  t.false(pool.tokenFor({ id: id0, attempt: 1, runTimeoutMs: 60_000 }, now + 1_000).presigned, 'one use');
  t.false(pool.tokenFor({ id: id4, attempt: 1, runTimeoutMs: 60_000 }, now).presigned, 'past the bound: signed at the claim');
  t.false(pool.tokenFor({ id: id1, attempt: 2, runTimeoutMs: 60_000 }, now).presigned, 'a retry never takes one');
  t.false(pool.tokenFor({ id: id2, attempt: 1, runTimeoutMs: 60_000 }, now + 2_001).presigned, 'past its age');
  t.false(pool.tokenFor({ id: id3, attempt: 1, runTimeoutMs: 120_000 }, now).presigned, 'an exp that would not cover a longer timeout');
  await waitFor(() => pool.pooled === 4, { message: 'the pool to refill' });
  t.is(pool.issued, 0);
  pool.takeRunId({ runTimeoutMs: 120_000, dueNow: true });
  t.is(pool.pooled, 4, 'a longer timeout than the tokens cover takes none');
  pool.takeRunId({ runTimeoutMs: 1_000, dueNow: false });
  t.is(pool.pooled, 4, 'a run not due now takes none');
  const fresh = new Set([...Array(4)].map(() => pool.takeRunId({ runTimeoutMs: 1_000, dueNow: true })));
  t.is(fresh.size, 4, 'each identity has its own id');
  for (const id of fresh) t.false(ids.includes(id), 'never an id handed out before');
  t.is(pool.issued, 4);
  // Runs not stored after all (a lost idempotency race) give their slot back.
  for (const id of fresh) pool.discard(id);
  await waitFor(() => pool.pooled === 4, { message: 'the pool to refill again' });
  // Older than half its age, a pooled identity is dropped (and made anew in the next quiet).
  now += 1_001;
  t.is(pool.takeRunId({ runTimeoutMs: 1_000, dueNow: true }).length, 36);
  t.is(pool.pooled, 0, 'identities past half their age leave the pool');
  t.true(timers.live.size > 0, 'a refill is due');
  pool.stop();
  t.is(timers.live.size, 0, 'stop clears the refill');
  t.is(pool.pooled, 0);
  t.false(pool.tokenFor({ id: id1, attempt: 1, runTimeoutMs: 60_000 }, now).presigned);
});

test('a full pool renews itself in idle time as its identities age', async (t) => {
  const { privateKey } = await keys();
  const timers = countedTimers();
  let signed = 0;
  const pool = new RunTokenPool({ privateKey, runTimeoutMs: 1_000, graceMs: 0, size: 2, maxAgeMs: 200, idleMs: 5, logger: testLogger(), timers, onSigned: () => (signed += 1) });
  t.teardown(() => pool.stop());
  pool.start();
  await waitFor(() => pool.pooled === 2, { message: 'the pool to fill' });
  t.is(timers.live.size, 1, 'the renewal is set');
  // Each identity leaves the pool at half its age (100 ms) and is signed anew.
  await waitFor(() => signed >= 6 && pool.pooled === 2, { message: 'the pool to renew itself' });
  pool.stop();
  t.is(timers.live.size, 0);
});

test('a claim brings the refill of a full pool forward from its distant renewal to the next quiet spell', async (t) => {
  const { privateKey } = await keys();
  let signed = 0;
  // The renewal is 30 s away: only the refill the submission brings forward can sign within the wait.
  const pool = new RunTokenPool({ privateKey, runTimeoutMs: 1_000, graceMs: 0, size: 2, maxAgeMs: 60_000, idleMs: 5, logger: testLogger(), onSigned: () => (signed += 1) });
  t.teardown(() => pool.stop());
  pool.start();
  await waitFor(() => pool.pooled === 2, { message: 'the pool to fill' });
  const runId = pool.takeRunId({ runTimeoutMs: 1_000, dueNow: true });
  t.is(pool.pooled, 1);
  t.true(pool.tokenFor({ id: runId, attempt: 1, runTimeoutMs: 1_000 }, Date.now()).presigned);
  await waitFor(() => pool.pooled === 2, { message: 'the refill after the claim' });
  t.is(signed, 3);
});

test('the pool signs only in a quiet spell: while submissions and claims keep coming, it waits', async (t) => {
  const { privateKey } = await keys();
  const timers = countedTimers();
  let sets = 0;
  const counting: RefillTimers = { set: (callback, delayMs) => ((sets += 1), timers.set(callback, delayMs)), clear: (timer) => timers.clear(timer) };
  // The pool's clock stands still: the server looks busy until it moves past `idleMs`.
  let now = Date.now();
  const pool = new RunTokenPool({ privateKey, runTimeoutMs: 1_000, graceMs: 0, size: 2, maxAgeMs: 60_000, idleMs: 5, logger: testLogger(), now: () => now, timers: counting });
  t.teardown(() => pool.stop());
  pool.start();
  pool.takeRunId({ runTimeoutMs: 1_000, dueNow: true });
  // The refill fires, finds the last activity too recent, and waits again, a few times over.
  await waitFor(() => sets >= 4, { message: 'the refill to have looked a few times' });
  t.is(pool.pooled, 0, 'nothing signed while the server is not quiet');
  now += 5;
  await waitFor(() => pool.pooled === 2, { message: 'the pool to fill once quiet' });
});
