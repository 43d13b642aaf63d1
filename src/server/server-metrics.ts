/**
 * Prometheus metrics of one server, on a Registry of its own (never the
 * global one) so several servers in one process do not clash. Gauges that
 * mirror the store are computed at scrape time. Every `queue` label goes
 * through `queueLabel()`, so the series stay bounded however many queues
 * clients invent (queue-labels.ts).
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { QueueLabels } from './queue-labels.ts';

export interface MetricsSources {
  runCounts: () => Promise<Array<{ queue: string; state: string; count: number }>>;
  connectedWorkers: () => number;
  /** Run identities whose token is signed, ready for a submission (run-token-pool.ts). */
  runTokenPool: () => number;
}

export class ServerMetrics {
  readonly registry: Registry;
  readonly claimRequests: Counter<string>;
  readonly runsClaimed: Counter<'queue'>;
  readonly runsLost: Counter<'queue'>;
  readonly runsRetried: Counter<'queue'>;
  readonly claimWait: Histogram<'queue'>;
  /** Run tokens handed out by claims, `signed`: `ahead` (made in idle time with the run's id) or `at_claim`. */
  readonly runTokens: Counter<'signed'>;
  /** Run tokens signed in idle time for the pool, used by a claim or not. */
  readonly runTokensSignedAhead: Counter<string>;
  readonly #queueLabels: QueueLabels;

  constructor(sources: MetricsSources, maxQueueLabels?: number) {
    this.registry = new Registry();
    this.#queueLabels = new QueueLabels(maxQueueLabels);
    const labelOf = (queue: string): string => this.#queueLabels.label(queue);
    const registers = [this.registry];
    new Gauge({
      name: 'lanes_runs',
      help: 'Runs by queue and state',
      labelNames: ['queue', 'state'],
      registers,
      async collect() {
        const counts = await sources.runCounts();
        this.reset();
        // Queues folded into one label add up.
        for (const { queue, state, count } of counts) this.inc({ queue: labelOf(queue), state }, count);
      },
    });
    new Gauge({
      name: 'lanes_workers_connected',
      help: 'Worker connections joined to worker:queue',
      registers,
      collect() {
        this.set(sources.connectedWorkers());
      },
    });
    this.claimRequests = new Counter({ name: 'lanes_claim_requests_total', help: 'claim requests received', registers });
    this.runsClaimed = new Counter({ name: 'lanes_runs_claimed_total', help: 'Runs handed out by claims', labelNames: ['queue'], registers });
    this.runsLost = new Counter({ name: 'lanes_runs_lost_total', help: 'Runs whose lease lapsed', labelNames: ['queue'], registers });
    this.runsRetried = new Counter({ name: 'lanes_runs_retried_total', help: 'Runs put back in their queue for another attempt', labelNames: ['queue'], registers });
    this.runTokens = new Counter({ name: 'lanes_run_tokens_total', help: 'Run tokens handed out by claims, by when they were signed', labelNames: ['signed'], registers });
    this.runTokensSignedAhead = new Counter({ name: 'lanes_run_tokens_signed_ahead_total', help: 'Run tokens signed in idle time for the run token pool, used by a claim or not', registers });
    new Gauge({
      name: 'lanes_run_token_pool',
      help: 'Run identities with a token signed in idle time, ready for a submission',
      registers,
      collect() {
        this.set(sources.runTokenPool());
      },
    });
    this.claimWait = new Histogram({
      name: 'lanes_claim_wait_seconds',
      help: 'Time from enqueue to claim',
      labelNames: ['queue'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
      registers,
    });
  }

  /** The `queue` label value for a queue: its name, or `~other` past the label limit. */
  queueLabel(queue: string): { queue: string } {
    return { queue: this.#queueLabels.label(queue) };
  }
}
