/**
 * What a run's thread receives: the plan with adaptors already installed and
 * resolved to files, the input and the limits that apply inside the thread.
 * Everything here crosses two structured-clone hops (parent → child → thread).
 */
import type { PlanEdge } from '../protocol/index.ts';
import type { EngineLog, EngineStepComplete, EngineStepStart } from './execution-events.ts';

export interface ExecutionAdaptor {
  /** `name@version`. */
  specifier: string;
  name: string;
  version: string;
  /** Absolute path of the adaptor's ES module entry. */
  entryPath: string;
}

export interface ExecutionJob {
  id: string;
  name?: string;
  body: string;
  adaptor: ExecutionAdaptor | null;
  credentialId: string | null;
  /** This job's body already compiled (the engine's cache): the thread skips compiling it. */
  compiled?: string;
}

export interface ExecutionRequest {
  runId: string;
  jobs: ExecutionJob[];
  triggerIds: string[];
  edges: PlanEdge[];
  startingNodeId: string;
  input: unknown;
  payloadLimitMb: number;
  logPayloadLimitMb: number;
  statePropsToRemove: readonly string[];
  /** Minimum level of job logs (`debug`, `info`, `default`, `none`). */
  jobLogLevel?: string;
  /** Log sanitising policy (`none`, `remove`, `obfuscate`, `summarize`). */
  sanitize?: string;
}

/** Events the thread produces; run start and completion are the parent's. */
export type ExecutionEvent = EngineStepStart | EngineLog | EngineStepComplete;
