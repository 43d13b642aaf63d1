/**
 * The two kinds of JWT in the protocol (PROTOCOL.md, "Authentication"):
 * the worker token (HS256 with the shared secret) that opens the socket, and
 * the run token (RS256 with the server's private key) that opens one run.
 */
import { createPrivateKey, createPublicKey, generateKeyPair, sign as cryptoSign } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { promisify } from 'node:util';
import { SignJWT, decodeProtectedHeader, jwtVerify } from 'jose';

export const WORKER_TOKEN_ISSUER = 'urn:openfn:worker';
export const RUN_TOKEN_ISSUER = 'Lightning';
/** Clock tolerance when verifying run tokens. */
export const RUN_TOKEN_CLOCK_TOLERANCE_S = 5;

/**
 * A token that cannot be made or does not verify. Shaped like `LanesError`
 * (a stable `code`, a `cause`) without extending it: protocol/ is the leaf
 * both sides import, so it imports nothing of ours.
 */
export class TokenError extends Error {
  readonly code = 'INVALID_TOKEN';

  constructor(message: string, cause?: unknown) {
    super(message, { cause });
    this.name = 'TokenError';
  }
}

const encoder = new TextEncoder();

/** Signs the worker token: `{worker_id, iat, iss}`, no expiry. */
export async function signWorkerToken(secret: string, workerId: string): Promise<string> {
  return new SignJWT({ worker_id: workerId })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setIssuedAt()
    .setIssuer(WORKER_TOKEN_ISSUER)
    .sign(encoder.encode(secret));
}

/** Verifies a worker token and returns its `worker_id`. */
export async function verifyWorkerToken(secret: string, token: string): Promise<{ workerId: string }> {
  try {
    const { payload } = await jwtVerify(token, encoder.encode(secret), {
      algorithms: ['HS256'],
      issuer: WORKER_TOKEN_ISSUER,
    });
    const workerId = payload['worker_id'];
    if (typeof workerId !== 'string' || workerId.length === 0) {
      throw new TokenError('worker token has no worker_id');
    }
    return { workerId };
  } catch (error) {
    if (error instanceof TokenError) throw error;
    throw new TokenError('worker token rejected', error);
  }
}

/** An RSA key (node:crypto) for run tokens: private to sign, public to verify. */
export type SigningKey = KeyObject;

export interface RunKeyPair {
  privateKey: SigningKey;
  publicKey: SigningKey;
  privateKeyPem: string;
  publicKeyPem: string;
}

/** The smallest RSA modulus accepted for RS256 (RFC 7518 §3.3). */
const MIN_RSA_BITS = 2048;

/** Makes a fresh RS256 key pair, with PEM exports to keep on disk. */
export async function generateRunKeyPair(): Promise<RunKeyPair> {
  const { privateKey, publicKey } = await promisify(generateKeyPair)('rsa', { modulusLength: MIN_RSA_BITS });
  return {
    privateKey,
    publicKey,
    privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  };
}

/** Reads a PEM that may also arrive base64-encoded (as env variables often carry it). */
export function decodePem(value: string): string {
  const trimmed = value.trim();
  if (trimmed.startsWith('-----BEGIN')) return trimmed;
  const decoded = Buffer.from(trimmed, 'base64').toString('utf8').trim();
  if (!decoded.startsWith('-----BEGIN')) throw new TokenError('key is neither PEM nor base64-encoded PEM');
  return decoded;
}

export async function importRunPrivateKey(pem: string): Promise<SigningKey> {
  return checkRsa(createPrivateKey(decodePem(pem)));
}

export async function importRunPublicKey(pem: string): Promise<SigningKey> {
  return checkRsa(createPublicKey(decodePem(pem)));
}

function checkRsa(key: KeyObject): KeyObject {
  const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
  if (key.asymmetricKeyType !== 'rsa') throw new TokenError(`RS256 needs an RSA key, got ${key.asymmetricKeyType ?? 'an unknown key type'}`);
  if (bits < MIN_RSA_BITS) throw new TokenError(`RS256 needs an RSA key of at least ${MIN_RSA_BITS} bits, got ${bits}`);
  return key;
}

/*
 * Run tokens are signed here with node:crypto, synchronously: a claim signs
 * one per run on the path from submit to run:start, and WebCrypto (which jose
 * uses) hands each signature to the thread pool and back, a wake-up that
 * costs more than the signature itself. Signing our own tokens needs no
 * parser; verifying someone else's does, and that is jose's job
 * (`verifyRunToken`). The format is plain JWS compact serialisation
 * (RFC 7515) with RS256 (RSASSA-PKCS1-v1_5 with SHA-256, RFC 7518 §3.3);
 * tests check it against jose.
 */
const RUN_TOKEN_HEADER = base64url(JSON.stringify({ alg: 'RS256', typ: 'JWT' }));

function base64url(value: string | Buffer): string {
  return Buffer.from(value).toString('base64url');
}

/**
 * Signs a run token: `{iss: "Lightning", id, nbf, exp}`, plus `jti` when
 * `tokenId` is given (the server sets one per attempt, so two claims of one
 * run within the same second still get different tokens).
 */
export function signRunToken(
  privateKey: SigningKey,
  runId: string,
  options: { nowSeconds: number; expiresAtSeconds: number; tokenId?: string },
): string {
  const claims: Record<string, string | number> = {
    id: runId,
    iss: RUN_TOKEN_ISSUER,
    iat: options.nowSeconds,
    nbf: options.nowSeconds,
    exp: options.expiresAtSeconds,
  };
  if (options.tokenId !== undefined) claims['jti'] = options.tokenId;
  const signingInput = `${RUN_TOKEN_HEADER}.${base64url(JSON.stringify(claims))}`;
  return `${signingInput}.${base64url(cryptoSign('sha256', Buffer.from(signingInput), privateKey))}`;
}

export interface RunTokenClaimsRead {
  runId: string;
  expiresAtSeconds: number;
}

function splitRunToken(token: string): [header: string, payload: string, signature: string] {
  const parts = token.split('.');
  if (parts.length !== 3) throw new TokenError('run token rejected: not a compact JWS');
  return parts as [string, string, string];
}

/**
 * Verifies a run token with jose and returns the run id it opens. Only RS256
 * is accepted (so `alg: none`, and HS256 signed with the public key as its
 * secret, are refused before any key is used), `iss` must be Lightning, and
 * `exp` is required: a run token that never expires is refused.
 */
export async function verifyRunToken(publicKey: SigningKey, token: string): Promise<RunTokenClaimsRead> {
  let payload: Record<string, unknown>;
  try {
    ({ payload } = await jwtVerify(token, publicKey, {
      algorithms: ['RS256'],
      issuer: RUN_TOKEN_ISSUER,
      requiredClaims: ['exp'],
      clockTolerance: RUN_TOKEN_CLOCK_TOLERANCE_S,
    }));
  } catch (error) {
    throw new TokenError(`run token rejected: ${joseReason(error, token)}`, error);
  }
  return checkRunTokenClaims(payload);
}

/** A one-line reason for a jose refusal, naming the rule that failed. */
function joseReason(error: unknown, token: string): string {
  const code = (error as { code?: unknown }).code;
  const claim = (error as { claim?: unknown }).claim;
  switch (code) {
    case 'ERR_JOSE_ALG_NOT_ALLOWED': {
      let alg: unknown;
      try {
        alg = decodeProtectedHeader(token).alg;
      } catch {
        alg = undefined;
      }
      return `alg must be RS256, got ${JSON.stringify(alg ?? null)}`;
    }
    case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED':
      return 'signature verification failed';
    case 'ERR_JWT_EXPIRED':
      return 'expired';
    case 'ERR_JWT_CLAIM_VALIDATION_FAILED':
      if (claim === 'iss') return `iss must be ${RUN_TOKEN_ISSUER}`;
      if (claim === 'nbf') return 'not yet valid';
      if (claim === 'exp') return 'exp is required';
      return `claim ${String(claim)} is invalid`;
    case 'ERR_JWS_INVALID':
    case 'ERR_JWT_INVALID':
      return `not a valid JWS: ${error instanceof Error ? error.message : String(error)}`;
    default:
      return error instanceof Error ? error.message : String(error);
  }
}

/**
 * The claims of a run token whose signature needs no check, because the
 * caller issued it and has just matched it byte for byte against what it
 * kept (the server, at a run's join, against the sha256 it stored when it
 * signed the token). The claims are checked as `verifyRunToken` checks them:
 * issuer, expiry, not-before, run id. Never for a token from anywhere else.
 */
export function readIssuedRunToken(token: string): RunTokenClaimsRead {
  const [, payload] = splitRunToken(token);
  return checkRunTokenClaims(decodeSegment(payload, 'payload'));
}

function checkRunTokenClaims(claims: Record<string, unknown>): RunTokenClaimsRead {
  if (claims['iss'] !== RUN_TOKEN_ISSUER) throw new TokenError(`run token rejected: iss must be ${RUN_TOKEN_ISSUER}`);
  const now = Math.floor(Date.now() / 1000);
  const exp = numericClaim(claims, 'exp');
  const nbf = numericClaim(claims, 'nbf');
  if (exp === undefined) throw new TokenError('run token rejected: exp is required');
  if (now - RUN_TOKEN_CLOCK_TOLERANCE_S >= exp) throw new TokenError('run token rejected: expired');
  if (nbf !== undefined && now + RUN_TOKEN_CLOCK_TOLERANCE_S < nbf) throw new TokenError('run token rejected: not yet valid');
  const runId = claims['id'];
  if (typeof runId !== 'string' || runId.length === 0) throw new TokenError('run token has no id');
  return { runId, expiresAtSeconds: exp };
}

function decodeSegment(segment: string, what: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'));
  } catch (error) {
    throw new TokenError(`run token rejected: ${what} is not base64url JSON`, error);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new TokenError(`run token rejected: ${what} is not a JSON object`);
  return value as Record<string, unknown>;
}

function numericClaim(claims: Record<string, unknown>, name: string): number | undefined {
  const value = claims[name];
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isFinite(value)) throw new TokenError(`run token rejected: ${name} must be a number`);
  return value;
}
