/**
 * The orchestration server's public API: what `lanes server`, `lanes dev`
 * and the integration tests use.
 */
export { LanesServer } from './lanes-server.ts';
export type { LanesServerState } from './lanes-server.ts';
export { resolveServerOptions, retryDelayMs, SERVER_DEFAULTS } from './server-options.ts';
export type { ServerOptions, ResolvedServerOptions } from './server-options.ts';
export { ServerError } from './server-error.ts';
export { WORKER_SOCKET_PATH } from './phoenix-socket-server.ts';
export { keyPathFor } from './run-keys.ts';
export { DEFAULT_QUEUE } from '../protocol/index.ts';
export { DEFAULT_CLAIM_CHAIN } from '../protocol/index.ts';
export type { RunRecord, Store } from './store/store.ts';
export { openStore } from './store/open-store.ts';
export { copySqliteToPostgres } from './store/copy-to-postgres.ts';
export { storeKindOf, describeDatabaseUrl } from './store/store-url.ts';
