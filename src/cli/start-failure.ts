/**
 * Why `lanes server` cannot start, as one line and an exit code: 2 when the
 * configuration is wrong (a `--db` that is a directory, not SQLite, in a
 * folder that does not exist; a `--host` that is no address of this machine),
 * 1 when the environment refuses (the port is in use, the database cannot be
 * written). Checked before the server opens anything, so a server that could
 * not write its database never starts serving.
 */
import { statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { EXIT_FAILURE, EXIT_USAGE } from './exit-codes.ts';

export interface StartFailure {
  exitCode: number;
  message: string;
}

/** SQLite's primary result codes that name what is wrong with a database file. */
const SQLITE_READONLY = 8;
const SQLITE_CANTOPEN = 14;
const SQLITE_NOTADB = 26;

/** Checks that `dbPath` is, or can become, a SQLite database this process can write. Null when it is fine. */
export function checkDatabasePath(dbPath: string, cwd: string): StartFailure | null {
  if (dbPath === ':memory:' || /^[a-z][a-z0-9+.-]*:\/\//i.test(dbPath)) return null;
  const path = resolve(cwd, dbPath);
  const kind = fileKind(path);
  if (kind === 'directory') return { exitCode: EXIT_USAGE, message: `--db ${path} is a directory, not a SQLite database file` };
  if (kind === 'missing') {
    const folder = dirname(path);
    const folderKind = fileKind(folder);
    if (folderKind === 'missing') return { exitCode: EXIT_USAGE, message: `--db ${path}: the folder ${folder} does not exist` };
    if (folderKind === 'file') return { exitCode: EXIT_USAGE, message: `--db ${path}: ${folder} is a file, not a folder` };
  }
  let db: DatabaseSync | undefined;
  try {
    db = new DatabaseSync(path);
    // Reads the header (NOTADB for a file that is not SQLite), then writes the header's user_version
    // back unchanged: a file that opened read-only (permissions, an immutable file, a read-only
    // mount) fails here. Nothing else of ours uses user_version.
    db.exec('SELECT count(*) FROM sqlite_master');
    const version = Number((db.prepare('PRAGMA user_version').get() as { user_version?: unknown } | undefined)?.user_version ?? 0);
    db.exec(`PRAGMA user_version = ${Number.isSafeInteger(version) ? version : 0}`);
    return null;
  } catch (error) {
    const code = sqliteCode(error);
    const detail = error instanceof Error ? error.message : String(error);
    if (code === SQLITE_NOTADB) return { exitCode: EXIT_USAGE, message: `--db ${path} is not a SQLite database (${detail})` };
    if (code === SQLITE_READONLY) return { exitCode: EXIT_FAILURE, message: `cannot write the database ${path}: ${detail} (check its permissions and the folder's)` };
    if (code === SQLITE_CANTOPEN) return { exitCode: EXIT_FAILURE, message: `cannot open the database ${path}: ${detail} (check its permissions and the folder's)` };
    return { exitCode: EXIT_FAILURE, message: `cannot use the database ${path}: ${detail}` };
  } finally {
    db?.close();
  }
}

/** Why `listen()` failed, for `--host`/`--port`. */
export function listenFailure(error: unknown, host: string, port: number): StartFailure {
  const code = errnoCode(error);
  const where = `${host}:${port}`;
  switch (code) {
    case 'EADDRINUSE':
      return { exitCode: EXIT_FAILURE, message: `cannot listen on ${where}: EADDRINUSE (the port is in use)` };
    case 'EACCES':
      return { exitCode: EXIT_FAILURE, message: `cannot listen on ${where}: EACCES (ports below 1024 need privileges)` };
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'EADDRNOTAVAIL':
      return { exitCode: EXIT_USAGE, message: `invalid --host ${JSON.stringify(host)}: ${code} (not an address of this machine)` };
    default:
      return { exitCode: EXIT_FAILURE, message: `cannot listen on ${where}: ${code ?? (error instanceof Error ? error.message : String(error))}` };
  }
}

function fileKind(path: string): 'file' | 'directory' | 'missing' {
  try {
    return statSync(path).isDirectory() ? 'directory' : 'file';
  } catch {
    return 'missing';
  }
}

/** The primary SQLite result code of a node:sqlite error (its `errcode` is the extended one). */
function sqliteCode(error: unknown): number | undefined {
  const errcode = typeof error === 'object' && error !== null ? (error as { errcode?: unknown }).errcode : undefined;
  return typeof errcode === 'number' ? errcode & 0xff : undefined;
}

/** The errno code of an error or of its causes (`ServerError` wraps the listen error). */
function errnoCode(error: unknown): string | undefined {
  for (let current = error, depth = 0; current !== undefined && depth < 5; depth++) {
    if (typeof current !== 'object' || current === null) return undefined;
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string' && /^E[A-Z_]+$/.test(code)) return code;
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}
