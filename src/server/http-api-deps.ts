/** What the JSON API's handlers (`http-api.ts` and the `*-routes.ts` files) work over. */
import type { Logger } from 'pino';
import type { DashboardRoutes } from './dashboard-routes.ts';
import type { RunTokenPool } from './run-token-pool.ts';
import type { RunLifecycle } from './run-lifecycle.ts';
import type { ServerMetrics } from './server-metrics.ts';
import type { ResolvedServerOptions } from './server-options.ts';
import type { Store } from './store/store.ts';
import type { WorkerRegistry } from './worker-registry.ts';

export interface HttpApiDeps {
  store: Store;
  lifecycle: RunLifecycle;
  /** Gives a submitted run an id whose token is signed already. */
  tokens: Pick<RunTokenPool, 'takeRunId' | 'discard'>;
  registry: WorkerRegistry;
  metrics: ServerMetrics;
  options: ResolvedServerOptions;
  logger: Logger;
  dashboard: DashboardRoutes;
  /** False while starting or stopping; `/readyz` answers 503 then. */
  isReady: () => boolean;
}
