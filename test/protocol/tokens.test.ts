import test from 'ava';
import {
  generateRunKeyPair,
  signRunToken,
  signWorkerToken,
  verifyRunToken,
  verifyWorkerToken,
  TokenError,
} from '../../src/protocol/index.ts';

test('a worker token signed with the secret verifies and carries the worker id', async (t) => {
  const token = await signWorkerToken('s3cret', 'worker-1');
  t.deepEqual(await verifyWorkerToken('s3cret', token), { workerId: 'worker-1' });
});

test('a worker token signed with another secret is refused', async (t) => {
  const token = await signWorkerToken('other', 'worker-1');
  await t.throwsAsync(verifyWorkerToken('s3cret', token), { instanceOf: TokenError });
});

test('a run token opens only its run and only until it expires', async (t) => {
  const keys = await generateRunKeyPair();
  const now = Math.floor(Date.now() / 1000);
  const token = await signRunToken(keys.privateKey, 'run-1', { nowSeconds: now, expiresAtSeconds: now + 60 });
  const verified = await verifyRunToken(keys.publicKey, token);
  t.is(verified.runId, 'run-1');
  const expired = await signRunToken(keys.privateKey, 'run-1', { nowSeconds: now - 120, expiresAtSeconds: now - 60 });
  await t.throwsAsync(verifyRunToken(keys.publicKey, expired), { instanceOf: TokenError });
  const forger = await generateRunKeyPair();
  const forged = await signRunToken(forger.privateKey, 'run-1', { nowSeconds: now, expiresAtSeconds: now + 60 });
  await t.throwsAsync(verifyRunToken(keys.publicKey, forged), { instanceOf: TokenError });
});
