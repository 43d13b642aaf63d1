/**
 * Helpers for worker tests: a typed fake executor whose runs finish when the
 * test says so (or at once), a WorkerConfig for a test server, a worker that
 * is stopped at teardown, and a TCP proxy that can cut every connection to
 * make the server "drop the socket" without stopping it.
 */
import type { ExecutionContext } from 'ava';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import type { AddressInfo, Server, Socket as NetSocket } from 'node:net';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { WorkerConfig } from '../../src/config/worker-config.ts';
import type { EngineEvent, EngineRunComplete, RunExecutor, RunRequest } from '../../src/engine/types.ts';
import type { EngineAbortReason } from '../../src/engine/types.ts';
import { planMemory } from '../../src/lanes/memory-plan.ts';
import { parseWorkloops } from '../../src/lanes/parse-workloops.ts';
import { timestampMicros } from '../../src/protocol/timestamp.ts';
import { Worker } from '../../src/worker/index.ts';
import type { WorkerCreateOptions } from '../../src/worker/index.ts';
import { TEST_SECRET, testLogger } from '../server/helpers.ts';

/**
 * Runs every job of the plan in order (following the edges from the trigger).
 * A job whose body contains `hold` waits until `release(runId)` or an abort;
 * `fail` makes the step fail; `big` makes an output over the payload limit.
 */
export class FakeExecutor implements RunExecutor {
  readonly requests: RunRequest[] = [];
  readonly #holds = new Map<string, () => void>();
  readonly #held = new Set<string>();

  get heldRunIds(): string[] {
    return [...this.#held];
  }

  release(runId: string): void {
    this.#holds.get(runId)?.();
  }

  releaseAll(): void {
    for (const release of this.#holds.values()) release();
  }

  async execute(request: RunRequest): Promise<EngineRunComplete> {
    this.requests.push(request);
    const emit = (event: EngineEvent): void => request.onEvent(event);
    emit({ type: 'run-start', timestamp: timestampMicros(), versions: { worker: 'test', node: process.versions.node } });
    const jobs = orderJobs(request);
    let state: unknown = request.input;
    let reason: EngineRunComplete['reason'] = 'success';
    let errorType: string | null = null;
    let errorMessage: string | null = null;
    let lastStepId: string | undefined;
    for (const job of jobs) {
      const stepId = `${request.runId}-${job.id}`;
      lastStepId = stepId;
      emit({ type: 'step-start', stepId, jobId: job.id, timestamp: timestampMicros() });
      emit({ type: 'log', level: 'info', source: 'JOB', message: [`running ${job.id}`], stepId, timestamp: timestampMicros() });
      emit({ type: 'log', level: 'info', source: 'JOB', message: ['second line'], stepId, timestamp: timestampMicros() });
      if (job.body.includes('hold')) {
        const aborted = await this.#hold(request);
        if (aborted !== null) {
          emit({ type: 'step-complete', stepId, jobId: job.id, reason: aborted.reason, errorType: aborted.errorType, errorMessage: aborted.message, outputJson: null, outputTooLarge: false, mem: { job: 1, system: 2 }, durationMs: 1, timestamp: timestampMicros() });
          return this.#complete(request, { reason: aborted.reason, errorType: aborted.errorType, errorMessage: aborted.message, finalState: null, finalStepId: stepId });
        }
      }
      const failed = job.body.includes('fail');
      const big = job.body.includes('big');
      state = { ...(state as object), [job.id]: 'done' };
      emit({
        type: 'step-complete',
        stepId,
        jobId: job.id,
        reason: failed ? 'fail' : 'success',
        errorType: failed ? 'JobError' : null,
        errorMessage: failed ? 'the job failed' : null,
        outputJson: big ? null : JSON.stringify(state),
        outputTooLarge: big,
        mem: { job: 1, system: 2 },
        durationMs: 3,
        timestamp: timestampMicros(),
        ...(job.body.includes('webhook') ? { webhookResponse: { status: 202, body: { ok: true } } } : {}),
      });
      if (failed) {
        reason = 'fail';
        errorType = 'JobError';
        errorMessage = 'the job failed';
      }
    }
    return this.#complete(request, { reason, errorType, errorMessage, finalState: state, ...(lastStepId === undefined ? {} : { finalStepId: lastStepId }) });
  }

  #complete(request: RunRequest, end: Omit<EngineRunComplete, 'type' | 'timestamp'>): EngineRunComplete {
    const event: EngineRunComplete = { type: 'run-complete', timestamp: timestampMicros(), ...end };
    request.onEvent(event);
    return event;
  }

  #hold(request: RunRequest): Promise<EngineAbortReason | null> {
    const { runId, signal } = request;
    this.#held.add(runId);
    return new Promise((resolve) => {
      const done = (value: EngineAbortReason | null): void => {
        this.#held.delete(runId);
        this.#holds.delete(runId);
        signal?.removeEventListener('abort', onAbort);
        resolve(value);
      };
      const onAbort = (): void => done((signal?.reason as EngineAbortReason | undefined) ?? { reason: 'kill', errorType: 'ShutdownError', message: 'aborted' });
      if (signal?.aborted) return onAbort();
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#holds.set(runId, () => done(null));
    });
  }
}

function orderJobs(request: RunRequest): RunRequest['plan']['jobs'] {
  const { plan } = request;
  const byId = new Map(plan.jobs.map((job) => [job.id, job]));
  const ordered: RunRequest['plan']['jobs'] = [];
  let next = plan.edges.find((edge) => typeof edge.source_trigger_id === 'string')?.target_job_id ?? plan.jobs[0]?.id;
  const seen = new Set<string>();
  while (next !== undefined && !seen.has(next)) {
    seen.add(next);
    const job = byId.get(next);
    if (job === undefined) break;
    ordered.push(job);
    next = plan.edges.find((edge) => edge.source_job_id === next)?.target_job_id;
  }
  return ordered;
}

export function testConfig(overrides: Partial<WorkerConfig> & { lightningUrl: string; workloopsText?: string }): WorkerConfig {
  const { workloopsText, ...rest } = overrides;
  const workloops = parseWorkloops(workloopsText ?? 'manual>*:2').lanes;
  const capacity = workloops.reduce((sum, lane) => sum + lane.capacity, 0);
  const runMemoryLimitMb = rest.runMemoryLimitMb ?? 256;
  const maxMemoryMb = rest.maxMemoryMb ?? null;
  const memory = planMemory({ lanes: workloops, runMemoryMb: runMemoryLimitMb, maxMemoryMb, spareChildren: rest.spareChildren ?? 0 });
  return Object.freeze({
    secret: TEST_SECRET,
    workloops,
    capacity,
    runMemoryLimitMb,
    maxMemoryMb,
    memoryCeilingMb: memory.ceilingMb,
    memory,
    maxRunDurationMs: 60_000,
    payloadLimitMb: 10,
    logPayloadLimitMb: 1,
    backoff: { minMs: 50, maxMs: 500 },
    port: 0,
    lightningPublicKey: null,
    logLevel: 'silent',
    logFormat: 'json',
    repoDir: '/tmp/lanes-test-repo',
    messageTimeoutMs: 5_000,
    claimTimeoutMs: 5_000,
    batchLogs: false,
    statePropsToRemove: ['configuration', 'response'],
    shutdownTimeoutMs: 10_000,
    workerName: 'test-worker',
    adaptorAllowList: ['@openfn/language-*'],
    preloadAdaptors: [],
    spareChildren: 0,
    idleChildTimeoutMs: 0,
    bundleCode: true,
    childNice: 10,
    backgroundNice: 19,
    lightningUrls: [overrides.lightningUrl],
    ...rest,
  } satisfies WorkerConfig);
}

/** Creates and starts a worker, stopped (forcefully if need be) at teardown. */
export async function startWorker(t: ExecutionContext, options: Partial<WorkerCreateOptions> & { config: WorkerConfig }): Promise<Worker> {
  const worker = await Worker.create({ logger: testLogger(), reconnect: { minMs: 20, maxMs: 200 }, healthHost: '127.0.0.1', ...options });
  t.teardown(async () => {
    await worker.stop({ force: true });
    if (worker.state !== 'stopped') throw new Error(`worker left in state ${worker.state}`);
  });
  await worker.start();
  return worker;
}

const FIXTURE_ADAPTOR_DIR = fileURLToPath(new URL('../fixtures/adaptor/', import.meta.url));

/**
 * A worker with the real engine (child processes, @openfn/runtime) and the
 * local fixture adaptor, on a temp repo removed after it stops; one slot
 * (`manual>*:1`) unless `overrides` say otherwise.
 */
export async function startEngineWorker(t: ExecutionContext, lightningUrl: string, overrides: Partial<WorkerConfig> & { workloopsText?: string } = {}): Promise<Worker> {
  const repoDir = await mkdtemp(join(tmpdir(), 'lanes-worker-repo-'));
  t.teardown(() => rm(repoDir, { recursive: true, force: true }));
  return startWorker(t, {
    config: testConfig({ lightningUrl, workloopsText: 'manual>*:1', repoDir, ...overrides }),
    engine: { localAdaptors: { '@openfn/language-lanesfixture': FIXTURE_ADAPTOR_DIR }, repoDir },
  });
}

/** A TCP proxy in front of the server; `dropAll()` cuts every connection like a server or network drop. */
export class DropProxy {
  readonly #server: Server;
  readonly #sockets = new Set<NetSocket>();
  /** Per connection: stops the server's bytes to the worker (they are dropped with the connection). */
  readonly #holds = new Set<() => void>();
  drops = 0;

  private constructor(server: Server) {
    this.#server = server;
  }

  static async start(t: ExecutionContext, targetPort: number): Promise<DropProxy> {
    const server = createServer();
    const proxy = new DropProxy(server);
    server.on('connection', (client) => {
      const upstream = connect(targetPort, '127.0.0.1');
      proxy.#sockets.add(client);
      proxy.#sockets.add(upstream);
      client.pipe(upstream);
      upstream.pipe(client);
      proxy.#holds.add(() => upstream.unpipe(client));
      const end = (): void => {
        client.destroy();
        upstream.destroy();
        proxy.#sockets.delete(client);
        proxy.#sockets.delete(upstream);
      };
      client.on('error', end).on('close', end);
      upstream.on('error', end).on('close', end);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    t.teardown(() => proxy.close());
    return proxy;
  }

  get port(): number {
    return (this.#server.address() as AddressInfo).port;
  }

  /** From now on nothing the server sends on the open connections reaches the worker (replies are lost). */
  holdReplies(): void {
    for (const hold of this.#holds) hold();
    this.#holds.clear();
  }

  dropAll(): void {
    this.drops++;
    this.#holds.clear();
    for (const socket of this.#sockets) socket.destroy();
    this.#sockets.clear();
  }

  async close(): Promise<void> {
    this.dropAll();
    if (!this.#server.listening) return;
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}
