/**
 * The RS256 key pair that signs run tokens. Given as PEM, or kept beside the
 * database as `<db>.key.pem` (created with mode 0600 on first start), or, for
 * an in-memory database, generated for this process only. On PostgreSQL the
 * generated key is kept in the database (`settings`), so every replica signs
 * and checks run tokens with the same key.
 */
import { createPublicKey } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import type { Logger } from 'pino';
import { decodePem, generateRunKeyPair, importRunPrivateKey, importRunPublicKey } from '../protocol/index.ts';
import type { SigningKey } from '../protocol/index.ts';
import { ServerError } from './server-error.ts';
import type { Store } from './store/store.ts';

export interface RunKeys {
  privateKey: SigningKey;
  publicKey: SigningKey;
  /** Give this to workers as `WORKER_LIGHTNING_PUBLIC_KEY`. */
  publicKeyPem: string;
}

/** The `settings` row that holds the run-token key on PostgreSQL. */
const RUN_KEY_SETTING = 'run_token_private_key';

/** Where the generated key lives for a file database. */
export function keyPathFor(dbPath: string): string {
  return `${dbPath}.key.pem`;
}

async function fromPem(pem: string): Promise<RunKeys> {
  const privatePem = decodePem(pem);
  const publicKeyPem = createPublicKey(privatePem).export({ type: 'spki', format: 'pem' }).toString().trim();
  return { privateKey: await importRunPrivateKey(privatePem), publicKey: await importRunPublicKey(publicKeyPem), publicKeyPem };
}

export async function loadRunKeys(options: { dbPath: string; privateKeyPem: string | undefined; store: Store; logger: Logger }): Promise<RunKeys> {
  try {
    if (options.privateKeyPem !== undefined) return await fromPem(options.privateKeyPem);
    if (options.store.kind === 'postgres') {
      const pair = await generateRunKeyPair();
      // The first replica's key wins; every later one reads it.
      const pem = await options.store.putSettingOnce(RUN_KEY_SETTING, pair.privateKeyPem);
      if (pem === pair.privateKeyPem) options.logger.info('run token key generated in the database');
      return await fromPem(pem);
    }
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
