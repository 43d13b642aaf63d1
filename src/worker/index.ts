/** The worker: connection, lanes, run reporting, health and metrics. */
export { Worker, WORKER_VERSION } from './worker.ts';
export type { WorkerCreateOptions, WorkerState } from './worker.ts';
export type { LaneSnapshot } from './lane-snapshot.ts';
export type { ConnectionState } from './queue-connection.ts';
export type { ServerFeatures } from './server-features.ts';
export type { EngineOverrides } from './create-engine.ts';
