/**
 * Handing a run to a child: its adaptors resolved (installed if need be), an
 * idle child taken from the pool, the run posted to it. The engine owns the
 * run around this (its session, timeout and interrupts, `engine.ts`).
 *
 * On an idle worker this is all synchronous: an adaptor resolved once stays
 * resolved (the repo keeps a resolution for good, a failure never), and a
 * child is free, so the run is posted within the engine's `execute` call,
 * before anything the engine sets up after it. Otherwise it settles once the
 * adaptors are in and a child freed up.
 */
import type { AdaptorRepo, ResolvedAdaptor } from '../runtime/adaptor-repo.ts';
import { endForAdaptorError, endForPlanError } from '../runtime/run-ends.ts';
import { buildExecutionRequest } from './build-execution-request.ts';
import type { ChildPool } from './child-pool.ts';
import type { CompiledJobs } from './compiled-jobs.ts';
import type { PooledChild } from './pooled-child.ts';
import type { RunSession } from './run-session.ts';
import type { RunRequest } from './types.ts';

export interface RunDispatchOptions {
  pool: ChildPool;
  compiled: CompiledJobs;
  maxRunMemoryLimitMb: number;
  /** The adaptor entry files a run uses, for the spares' preloads. */
  noteRecent: (entryPaths: readonly string[]) => void;
}

/** What the engine's `running` state holds that a dispatch needs. */
export interface DispatchContext {
  repo: AdaptorRepo;
  runtimeVersion: string;
}

export class RunDispatch {
  readonly #options: RunDispatchOptions;
  /** Adaptors resolved before, by specifier. */
  readonly #resolved = new Map<string, ResolvedAdaptor>();

  constructor(options: RunDispatchOptions) {
    this.#options = options;
  }

  /**
   * Posts `request` to a child, or settles its session (a plan or adaptor
   * error). Undefined when that was done now; else a promise that settles
   * once it is done, or once the session settled while it waited for a child.
   */
  dispatch(request: RunRequest, session: RunSession, context: DispatchContext, setChild: (child: PooledChild) => void): Promise<void> | undefined {
    const { plan } = request;
    const nodeIds = new Set([...plan.jobs.map((j) => j.id), ...plan.triggers.map((t) => t.id)]);
    const versions: Record<string, string> = { node: process.version, '@openfn/runtime': context.runtimeVersion };
    session.setVersions(versions);
    if (!nodeIds.has(plan.starting_node_id)) {
      session.settle(endForPlanError(`starting node ${plan.starting_node_id} is not a job or trigger of the plan`));
      return undefined;
    }
    const withAdaptors = (adaptors: ReadonlyMap<string, ResolvedAdaptor>): Promise<void> | undefined => {
      for (const a of adaptors.values()) versions[a.name] = a.version;
      this.#options.noteRecent([...adaptors.values()].map((a) => a.entryPath));
      if (session.settled) return undefined;
      const urgent = request.urgent === true;
      const free = this.#options.pool.acquireNow(urgent);
      if (free !== undefined) return this.#post(request, session, adaptors, free, setChild);
      return this.#options.pool.acquire(session.settledSignal, urgent).then(
        (child) => {
          if (session.settled) child.release();
          else this.#post(request, session, adaptors, child, setChild);
        },
        () => undefined, // settled while waiting for a free child
      );
    };
    const specifiers = [...new Set(plan.jobs.map((j) => j.adaptor).filter((a): a is string => Boolean(a)))];
    const known = this.#known(specifiers);
    if (known !== undefined) return withAdaptors(known);
    return Promise.all(specifiers.map((s) => context.repo.resolve(s))).then(
      (resolved) => {
        const adaptors = new Map(specifiers.map((s, i) => [s, resolved[i] as ResolvedAdaptor]));
        for (const [specifier, adaptor] of adaptors) this.#resolved.set(specifier, adaptor);
        return withAdaptors(adaptors);
      },
      (error: unknown) => void session.settle(endForAdaptorError(error instanceof Error ? error.message : String(error))),
    );
  }

  /** The adaptors of `specifiers` when each was resolved before, else undefined. */
  #known(specifiers: readonly string[]): Map<string, ResolvedAdaptor> | undefined {
    const known = new Map<string, ResolvedAdaptor>();
    for (const specifier of specifiers) {
      const adaptor = this.#resolved.get(specifier);
      if (adaptor === undefined) return undefined;
      known.set(specifier, adaptor);
    }
    return known;
  }

  /** Posts the run to its reserved child. */
  #post(request: RunRequest, session: RunSession, adaptors: ReadonlyMap<string, ResolvedAdaptor>, child: PooledChild, setChild: (child: PooledChild) => void): undefined {
    setChild(child);
    const { execution, compileKeys } = buildExecutionRequest(request, adaptors, this.#options.compiled);
    const runId = request.runId;
    const memoryLimitMb = Math.min(request.limits.memoryLimitMb, this.#options.maxRunMemoryLimitMb);
    child.run(runId, execution, memoryLimitMb, {
      // run-start goes out when the thread has the run, not here: before it lie the hop to the child and the thread.
      onStarted: (timestamp) => session.start(timestamp),
      onEvent: (event) => session.emit(event),
      onCompiled: (jobId, code) => {
        const key = compileKeys.get(jobId);
        if (key !== undefined) this.#options.compiled.set(key, code);
      },
      onEnd: (end) => session.settle(end),
      onCredentialRequest: (requestId, credentialId) => {
        request.fetchCredential(credentialId).then(
          (body) => child.replyCredential(runId, requestId, { ok: true, body }),
          (error: unknown) => child.replyCredential(runId, requestId, { ok: false, message: error instanceof Error ? error.message : String(error) }),
        );
      },
    }, request.urgent === true);
    return undefined;
  }
}
