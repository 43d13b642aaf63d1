/**
 * The worker's Prometheus metrics, on a Registry of its own so that two
 * workers in one process (tests, `lanes dev`) never share or clash.
 * Lane gauges are read from the lanes at scrape time, so they cannot drift.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { ClaimSettled } from '../lanes/claimer.ts';
import type { Workloop } from '../lanes/workloop.ts';
import type { ExitReason } from '../protocol/reasons.ts';
import type { RunStartPhases } from './run-attempt.ts';

export class WorkerMetrics {
  readonly registry = new Registry();
  readonly #claims: Counter<'lane' | 'outcome'>;
  readonly #claimDuration: Histogram<'lane'>;
  readonly #runs: Counter<'lane' | 'reason'>;
  readonly #runDuration: Histogram<'lane'>;
  readonly #reconnects: Counter;
  readonly #startPhases: Histogram<'lane' | 'phase'>;

  /**
   * `accounted` says what the worker counts against its memory now: the live
   * engine children (a retired child is not counted; the ceiling's plan still
   * keeps room for it, since runs fork it again) and the memory they each count for.
   */
  constructor(
    lanes: () => readonly Workloop[],
    workerId: string,
    memoryCeilingMb = 0,
    laneRssBytes: (lane: Workloop) => number = () => 0,
    accounted: () => { workerMb: number; children: number; childMb: number } = () => ({ workerMb: 0, children: 0, childMb: 0 }),
  ) {
    this.registry.setDefaultLabels({ worker_id: workerId });
    const registers = [this.registry];
    const perLane = (name: string, help: string, read: (lane: Workloop) => number): void => {
      new Gauge({
        name,
        help,
        labelNames: ['lane'] as const,
        registers,
        collect() {
          for (const lane of lanes()) this.set({ lane: lane.id }, read(lane));
        },
      });
    };
    perLane('lanes_worker_lane_capacity', 'Slots of the lane', (lane) => lane.capacity);
    perLane('lanes_worker_lane_active_runs', 'Runs executing in the lane', (lane) => lane.activeCount);
    perLane('lanes_worker_lane_claims_in_flight', 'Slots promised to the claim in flight', (lane) => lane.promisedCount);
    const MB = 1024 * 1024;
    perLane('lanes_worker_lane_memory_bytes', "The lane's memory for runs (its share of the ceiling)", (lane) => (lane.memory?.totalMb ?? 0) * MB);
    perLane('lanes_worker_lane_memory_reserved_bytes', "Memory the lane's runs reserve now", (lane) => (lane.memory?.reservedMb ?? 0) * MB);
    perLane('lanes_worker_lane_memory_in_use_bytes', "Resident memory of the processes running the lane's runs, as last sampled", laneRssBytes);
    perLane('lanes_worker_lane_memory_free_bytes', 'Memory of the lane not reserved by its runs', (lane) => (lane.memory?.unreservedMb ?? 0) * MB);
    new Gauge({
      name: 'lanes_worker_memory_ceiling_bytes',
      help: 'The memory ceiling of the worker and its engine children (--max-memory), or without it the runs\' ceiling Σ capacity × run memory',
      registers,
    }).set(memoryCeilingMb * MB);
    new Gauge({
      name: 'lanes_worker_engine_children',
      help: 'Engine child processes alive now (warm, busy or starting); idle children retired after --idle-child-timeout-seconds are not counted',
      registers,
      collect() {
        this.set(accounted().children);
      },
    });
    new Gauge({
      name: 'lanes_worker_memory_accounted_bytes',
      help: "What the worker counts against its memory now: itself, each live engine child, and the runs' reservations",
      registers,
      collect() {
        const now = accounted();
        const reservedMb = lanes().reduce((sum, lane) => sum + (lane.memory?.reservedMb ?? 0), 0);
        this.set((now.workerMb + now.children * now.childMb + reservedMb) * MB);
      },
    });
    this.#claims = new Counter({ name: 'lanes_worker_claims_total', help: 'Claims by lane and outcome (runs, empty, error)', labelNames: ['lane', 'outcome'] as const, registers });
    this.#claimDuration = new Histogram({
      name: 'lanes_worker_claim_duration_seconds',
      help: 'Claim round trip',
      labelNames: ['lane'] as const,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    this.#runs = new Counter({ name: 'lanes_worker_runs_total', help: 'Finished runs by lane and reason (unreported when the run could not be reported)', labelNames: ['lane', 'reason'] as const, registers });
    this.#runDuration = new Histogram({
      name: 'lanes_worker_run_duration_seconds',
      help: 'Run duration from claim to run:complete',
      labelNames: ['lane'] as const,
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600],
      registers,
    });
    this.#startPhases = new Histogram({
      name: 'lanes_worker_run_start_phase_seconds',
      help: 'Time from a claim to run:start in two legs: claim_to_dispatch (join, fetch:plan, fetch:dataclip) and dispatch_to_start (adaptors, a free child, the hops to the run thread)',
      labelNames: ['lane', 'phase'] as const,
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    this.#reconnects = new Counter({ name: 'lanes_worker_reconnects_total', help: 'Reconnections to worker:queue after the first join', registers });
  }

  claimSettled(event: ClaimSettled): void {
    this.#claims.inc({ lane: event.lane, outcome: event.outcome });
    this.#claimDuration.observe({ lane: event.lane }, event.durationMs / 1000);
  }

  runFinished(lane: string, reason: ExitReason | null, durationMs: number): void {
    this.#runs.inc({ lane, reason: reason ?? 'unreported' });
    this.#runDuration.observe({ lane }, durationMs / 1000);
  }

  runStarted(lane: string, phases: RunStartPhases): void {
    this.#startPhases.observe({ lane, phase: 'claim_to_dispatch' }, phases.claimToDispatchMs / 1000);
    this.#startPhases.observe({ lane, phase: 'dispatch_to_start' }, phases.dispatchToStartMs / 1000);
  }

  reconnected(): void {
    this.#reconnects.inc();
  }
}
