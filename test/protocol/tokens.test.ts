import { generateKeyPairSync } from 'node:crypto';
import test from 'ava';
import { SignJWT, UnsecuredJWT, importPKCS8, importSPKI, jwtVerify } from 'jose';
import {
  generateRunKeyPair,
  importRunPrivateKey,
  importRunPublicKey,
  readIssuedRunToken,
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
  const token = signRunToken(keys.privateKey, 'run-1', { nowSeconds: now, expiresAtSeconds: now + 60 });
  const verified = await verifyRunToken(keys.publicKey, token);
  t.is(verified.runId, 'run-1');
  const expired = signRunToken(keys.privateKey, 'run-1', { nowSeconds: now - 120, expiresAtSeconds: now - 60 });
  await t.throwsAsync(verifyRunToken(keys.publicKey, expired), { instanceOf: TokenError });
  const forger = await generateRunKeyPair();
  const forged = signRunToken(forger.privateKey, 'run-1', { nowSeconds: now, expiresAtSeconds: now + 60 });
  await t.throwsAsync(verifyRunToken(keys.publicKey, forged), { instanceOf: TokenError });
});

test('run tokens interoperate with jose: ours verify there, and RS256 tokens signed there verify here', async (t) => {
  const keys = await generateRunKeyPair();
  const now = Math.floor(Date.now() / 1000);
  const ours = signRunToken(keys.privateKey, 'run-2', { nowSeconds: now, expiresAtSeconds: now + 60, tokenId: 'jti-1' });
  const { payload, protectedHeader } = await jwtVerify(ours, await importSPKI(keys.publicKeyPem, 'RS256'), { issuer: 'Lightning', algorithms: ['RS256'] });
  t.deepEqual(protectedHeader, { alg: 'RS256', typ: 'JWT' });
  t.like(payload, { id: 'run-2', iss: 'Lightning', iat: now, nbf: now, exp: now + 60, jti: 'jti-1' });

  const theirs = await new SignJWT({ id: 'run-3' })
    .setProtectedHeader({ alg: 'RS256' })
    .setIssuer('Lightning')
    .setNotBefore(now)
    .setExpirationTime(now + 60)
    .sign(await importPKCS8(keys.privateKeyPem, 'RS256'));
  t.deepEqual(await verifyRunToken(keys.publicKey, theirs), { runId: 'run-3', expiresAtSeconds: now + 60 });
});

test('run tokens with another alg, issuer, no exp, a future nbf or a mangled body are refused', async (t) => {
  const keys = await generateRunKeyPair();
  const rsa = await importPKCS8(keys.privateKeyPem, 'RS256');
  const now = Math.floor(Date.now() / 1000);
  const base = () => new SignJWT({ id: 'run-1' }).setIssuer('Lightning').setExpirationTime(now + 60);
  const good = signRunToken(keys.privateKey, 'run-1', { nowSeconds: now, expiresAtSeconds: now + 60 });
  const [header, body, signature] = good.split('.') as [string, string, string];
  const otherBody = Buffer.from(JSON.stringify({ id: 'run-2', iss: 'Lightning', exp: now + 60 })).toString('base64url');
  const cases: Array<[string, string, RegExp]> = [
    ['none', new UnsecuredJWT({ id: 'run-1' }).setIssuer('Lightning').encode(), /alg must be RS256, got "none"/],
    ['HS256 with the public key as secret', await base().setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode(keys.publicKeyPem)), /alg must be RS256/],
    ['PS256', await base().setProtectedHeader({ alg: 'PS256' }).sign(await importPKCS8(keys.privateKeyPem, 'PS256')), /alg must be RS256/],
    ['another issuer', await new SignJWT({ id: 'run-1' }).setProtectedHeader({ alg: 'RS256' }).setIssuer('Mallory').setExpirationTime(now + 60).sign(rsa), /iss must be Lightning/],
    ['nbf in a minute', await base().setProtectedHeader({ alg: 'RS256' }).setNotBefore(now + 60).sign(rsa), /not yet valid/],
    ['a swapped body', `${header}.${otherBody}.${signature}`, /signature verification failed/],
    ['two segments', `${header}.${body}`, /not a valid JWS/],
    ['a header that is not JSON', `bm90IGpzb24.${body}.${signature}`, /not a valid JWS/],
    ['no exp', await new SignJWT({ id: 'run-1' }).setProtectedHeader({ alg: 'RS256' }).setIssuer('Lightning').sign(rsa), /exp is required/],
    ['no exp, none', new UnsecuredJWT({ id: 'run-1' }).setIssuer('Lightning').encode(), /alg must be RS256, got "none"/],
    ['HS256 with the public key in DER as secret', await base().setProtectedHeader({ alg: 'HS256' }).sign(keys.publicKey.export({ type: 'spki', format: 'der' })), /alg must be RS256, got "HS256"/],
    ['expired', await new SignJWT({ id: 'run-1' }).setProtectedHeader({ alg: 'RS256' }).setIssuer('Lightning').setExpirationTime(now - 60).sign(rsa), /expired/],
  ];
  for (const [what, token, message] of cases) {
    const error = await t.throwsAsync(verifyRunToken(keys.publicKey, token), { instanceOf: TokenError }, what);
    t.regex(error?.message ?? '', message, what);
  }
});

test('run keys must be RSA of at least 2048 bits', async (t) => {
  const small = generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  await t.throwsAsync(importRunPrivateKey(small), { instanceOf: TokenError, message: /at least 2048 bits, got 1024/ });
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'pem' }).toString();
  await t.throwsAsync(importRunPublicKey(ec), { instanceOf: TokenError, message: /needs an RSA key, got ec/ });
});

test('readIssuedRunToken checks the claims of a token the caller issued, but not its signature', async (t) => {
  const keys = await generateRunKeyPair();
  const now = Math.floor(Date.now() / 1000);
  const token = signRunToken(keys.privateKey, 'run-9', { nowSeconds: now, expiresAtSeconds: now + 60 });
  t.deepEqual(readIssuedRunToken(token), { runId: 'run-9', expiresAtSeconds: now + 60 });
  const expired = signRunToken(keys.privateKey, 'run-9', { nowSeconds: now - 120, expiresAtSeconds: now - 60 });
  t.throws(() => readIssuedRunToken(expired), { instanceOf: TokenError, message: /expired/ });
  const future = signRunToken(keys.privateKey, 'run-9', { nowSeconds: now + 600, expiresAtSeconds: now + 900 });
  t.throws(() => readIssuedRunToken(future), { instanceOf: TokenError, message: /not yet valid/ });
  t.throws(() => readIssuedRunToken('not-a-token'), { instanceOf: TokenError });
  // Which is why it is only for a token matched byte for byte against one kept at issue.
  const [header, , signature] = token.split('.');
  const swapped = `${header}.${Buffer.from(JSON.stringify({ id: 'run-other', iss: 'Lightning', exp: now + 60 })).toString('base64url')}.${signature}`;
  t.is(readIssuedRunToken(swapped).runId, 'run-other');
  await t.throwsAsync(verifyRunToken(keys.publicKey, swapped), { instanceOf: TokenError });
});

test('worker tokens: alg none, another HS alg, another issuer or no worker_id are refused', async (t) => {
  const secret = new TextEncoder().encode('s3cret');
  const cases: Array<[string, string]> = [
    ['none', new UnsecuredJWT({ worker_id: 'w' }).setIssuer('urn:openfn:worker').encode()],
    ['HS512', await new SignJWT({ worker_id: 'w' }).setProtectedHeader({ alg: 'HS512' }).setIssuer('urn:openfn:worker').sign(new TextEncoder().encode('s3cret'.repeat(11)))],
    ['another issuer', await new SignJWT({ worker_id: 'w' }).setProtectedHeader({ alg: 'HS256' }).setIssuer('Mallory').sign(secret)],
    ['no worker_id', await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setIssuer('urn:openfn:worker').sign(secret)],
    ['expired', await new SignJWT({ worker_id: 'w' }).setProtectedHeader({ alg: 'HS256' }).setIssuer('urn:openfn:worker').setExpirationTime(Math.floor(Date.now() / 1000) - 60).sign(secret)],
  ];
  for (const [what, token] of cases) await t.throwsAsync(verifyWorkerToken('s3cret', token), { instanceOf: TokenError }, what);
});
