/**
 * `lanes copy-db --from ./lanes.db --to postgres://…`: moves a deployment
 * from SQLite to PostgreSQL (docs/operations.md, "From SQLite to
 * PostgreSQL"). Stop the server first. Bad arguments are one line and exit
 * 2; a copy that fails is one line and exit 1, and leaves the target empty.
 */
import type { Argv } from 'yargs';
import type { OptionSpec } from '../../config/option-spec.ts';
import { RawConfig } from '../../config/raw-config.ts';
import { ConfigError } from '../../errors/config-error.ts';
import { LanesError } from '../../errors/lanes-error.ts';
import { copySqliteToPostgres, describeDatabaseUrl, storeKindOf } from '../../server/index.ts';
import type { CliContext } from '../cli-context.ts';
import { EXIT_FAILURE, EXIT_OK } from '../exit-codes.ts';
import { createRootLogger } from '../logger.ts';
import { declareOptions, pickFlags } from '../option-builder.ts';

export const COPY_DB_OPTIONS: readonly OptionSpec[] = [
  { flag: 'from', type: 'string', describe: 'SQLite database file of the stopped server (its .key.pem beside it is copied too)' },
  { flag: 'to', type: 'string', describe: 'postgres:// URL of an empty (or freshly created) database' },
];

export const command = 'copy-db';
export const describe = 'Copy a stopped server\'s SQLite database into an empty PostgreSQL database';

export function builder<T>(yargs: Argv<T>): Argv<T> {
  return declareOptions(yargs, COPY_DB_OPTIONS);
}

export async function handler(argv: Record<string, unknown>, ctx: CliContext): Promise<number> {
  const raw = new RawConfig(COPY_DB_OPTIONS, pickFlags(argv, COPY_DB_OPTIONS), ctx.env);
  const from = raw.get('from');
  const to = raw.get('to');
  if (!from || from.value.trim() === '' || from.value === ':memory:') throw new ConfigError('--from', from?.source ?? { kind: 'default' }, from?.value, 'must name a SQLite database file');
  if (!to || storeKindOf(to.value) !== 'postgres') throw new ConfigError('--to', to?.source ?? { kind: 'default' }, undefined, 'must be a postgres:// URL (value not shown: it may hold a password)');
  try {
    // copy-db speaks in its own lines: its root logger only shows errors.
    const logger = createRootLogger({ level: 'error', format: 'json', name: 'lanes-copy-db' });
    const report = await copySqliteToPostgres({ from: from.value, to: to.value, logger });
    const counts = Object.entries(report.rows).map(([table, rows]) => `${table} ${rows}`).join(', ');
    ctx.out(`copied ${from.value} to ${describeDatabaseUrl(to.value)}: ${counts}${report.runTokenKey ? '; run-token key' : ''}`);
    return EXIT_OK;
  } catch (error) {
    const cause = error instanceof Error && error.cause instanceof Error ? `: ${error.cause.message}` : '';
    ctx.err(`lanes: copy-db failed: ${error instanceof LanesError || error instanceof Error ? error.message : String(error)}${cause}`);
    return EXIT_FAILURE;
  }
}
