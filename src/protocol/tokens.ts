/**
 * The two kinds of JWT in the protocol (PROTOCOL.md, "Authentication"):
 * the worker token (HS256 with the shared secret) that opens the socket, and
 * the run token (RS256 with the server's private key) that opens one run.
 */
import { SignJWT, jwtVerify, importPKCS8, importSPKI, generateKeyPair, exportPKCS8, exportSPKI } from 'jose';
import type { CryptoKey, KeyObject } from 'jose';
import { LanesError } from '../errors/lanes-error.ts';

export const WORKER_TOKEN_ISSUER = 'urn:openfn:worker';
export const RUN_TOKEN_ISSUER = 'Lightning';
/** Clock tolerance when verifying run tokens. */
export const RUN_TOKEN_CLOCK_TOLERANCE_S = 5;

export class TokenError extends LanesError {
  constructor(message: string, cause?: unknown) {
    super('INVALID_TOKEN', message, { cause });
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

export type SigningKey = CryptoKey | KeyObject;

export interface RunKeyPair {
  privateKey: SigningKey;
  publicKey: SigningKey;
  privateKeyPem: string;
  publicKeyPem: string;
}

/** Makes a fresh RS256 key pair, with PEM exports to keep on disk. */
export async function generateRunKeyPair(): Promise<RunKeyPair> {
  const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
  return {
    privateKey,
    publicKey,
    privateKeyPem: await exportPKCS8(privateKey),
    publicKeyPem: await exportSPKI(publicKey),
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
  return importPKCS8(decodePem(pem), 'RS256', { extractable: true });
}

export async function importRunPublicKey(pem: string): Promise<SigningKey> {
  return importSPKI(decodePem(pem), 'RS256');
}

/**
 * Signs a run token: `{iss: "Lightning", id, nbf, exp}`, plus `jti` when
 * `tokenId` is given (the server sets one per attempt, so two claims of one
 * run within the same second still get different tokens).
 */
export async function signRunToken(
  privateKey: SigningKey,
  runId: string,
  options: { nowSeconds: number; expiresAtSeconds: number; tokenId?: string },
): Promise<string> {
  const jwt = new SignJWT({ id: runId })
    .setProtectedHeader({ alg: 'RS256', typ: 'JWT' })
    .setIssuer(RUN_TOKEN_ISSUER)
    .setIssuedAt(options.nowSeconds)
    .setNotBefore(options.nowSeconds)
    .setExpirationTime(options.expiresAtSeconds);
  if (options.tokenId !== undefined) jwt.setJti(options.tokenId);
  return jwt.sign(privateKey);
}

/** Verifies a run token and returns the run id it opens. */
export async function verifyRunToken(publicKey: SigningKey, token: string): Promise<{ runId: string; expiresAtSeconds: number | undefined }> {
  try {
    const { payload } = await jwtVerify(token, publicKey, {
      algorithms: ['RS256'],
      issuer: RUN_TOKEN_ISSUER,
      clockTolerance: RUN_TOKEN_CLOCK_TOLERANCE_S,
    });
    const runId = payload['id'];
    if (typeof runId !== 'string' || runId.length === 0) throw new TokenError('run token has no id');
    return { runId, expiresAtSeconds: payload.exp };
  } catch (error) {
    if (error instanceof TokenError) throw error;
    throw new TokenError('run token rejected', error);
  }
}
