/** What the JSON API's handlers (`http-api.ts` and the `*-routes.ts` files) work over. */
import type { Logger } from 'pino';
import type { DashboardRoutes } from './dashboard-routes.ts';
import type { PresignedTokens } from './presigned-tokens.ts';
import type { RunLifecycle } from './run-lifecycle.ts';
import type { ServerMetrics } from './server-metrics.ts';
import type { ResolvedServerOptions } from './server-options.ts';
import type { Store } from './store/store.ts';
import type { WorkerRegistry } from './worker-registry.ts';

export interface HttpApiDeps {
  store: Store;
  lifecycle: RunLifecycle;
  /** Signs a just-submitted run's token ahead of its claim. */
  tokens: Pick<PresignedTokens, 'presignSoon'>;
  registry: WorkerRegistry;
  metrics: ServerMetrics;
  options: ResolvedServerOptions;
  logger: Logger;
  dashboard: DashboardRoutes;
  /** False while starting or stopping; `/readyz` answers 503 then. */
  isReady: () => boolean;
}
