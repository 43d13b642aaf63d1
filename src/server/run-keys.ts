/**
 * The RS256 key pair that signs run tokens. Given as PEM, or kept beside the
 * database as `<db>.key.pem` (created with mode 0600 on first start), or, for
 * an in-memory database, generated for this process only.
 */
import { createPublicKey } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import type { Logger } from 'pino';
import { decodePem, generateRunKeyPair, importRunPrivateKey, importRunPublicKey } from '../protocol/index.ts';
import type { SigningKey } from '../protocol/index.ts';
import { ServerError } from './server-error.ts';

export interface RunKeys {
  privateKey: SigningKey;
  publicKey: SigningKey;
  /** Give this to workers as `WORKER_LIGHTNING_PUBLIC_KEY`. */
  publicKeyPem: string;
}

/** Where the generated key lives for a file database. */
export function keyPathFor(dbPath: string): string {
  return `${dbPath}.key.pem`;
}

async function fromPem(pem: string): Promise<RunKeys> {
  const privatePem = decodePem(pem);
  const publicKeyPem = createPublicKey(privatePem).export({ type: 'spki', format: 'pem' }).toString().trim();
  return { privateKey: await importRunPrivateKey(privatePem), publicKey: await importRunPublicKey(publicKeyPem), publicKeyPem };
}

export async function loadRunKeys(options: { dbPath: string; privateKeyPem: string | undefined; logger: Logger }): Promise<RunKeys> {
  try {
    if (options.privateKeyPem !== undefined) return await fromPem(options.privateKeyPem);
    if (options.dbPath === ':memory:') {
      const pair = await generateRunKeyPair();
      return { privateKey: pair.privateKey, publicKey: pair.publicKey, publicKeyPem: pair.publicKeyPem.trim() };
    }
    const path = keyPathFor(options.dbPath);
    let existing: string | undefined;
    try {
      existing = await readFile(path, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
    if (existing !== undefined) return await fromPem(existing);
    const pair = await generateRunKeyPair();
    // 'wx': never overwrite a key another process wrote meanwhile.
    await writeFile(path, pair.privateKeyPem, { mode: 0o600, flag: 'wx' });
    options.logger.info({ path }, 'run token key generated');
    return { privateKey: pair.privateKey, publicKey: pair.publicKey, publicKeyPem: pair.publicKeyPem.trim() };
  } catch (error) {
    throw new ServerError('SERVER_KEY', 'cannot load the run token private key', { cause: error });
  }
}
