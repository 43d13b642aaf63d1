/**
 * Where a pooled child's reports of its run go (pooled-child.ts): the run's
 * session, through the engine's dispatch (run-dispatch.ts).
 */
import type { RunEnd } from '../runtime/run-ends.ts';
import type { ExecutionEvent } from '../runtime/execution-request.ts';
import type { ChildToParent } from './ipc-messages.ts';

export interface RunSink {
  /** The run's thread took the run (its clock's `timestamp`); every event follows this. */
  onStarted(timestamp: string): void;
  onEvent(event: ExecutionEvent): void;
  /** A job of the run was compiled in its thread (before any job code ran). */
  onCompiled(jobId: string, code: string): void;
  onCredentialRequest(requestId: number, credentialId: string): void;
  /** The run ended inside the child (or the child died under it). Called at most once. */
  onEnd(end: RunEnd): void;
}

/**
 * Passes one of the thread's reports (its start, an event, a compiled job)
 * to `sink`. False for any other message: the caller handles it.
 */
export function deliverReport(sink: RunSink | undefined, message: ChildToParent): boolean {
  switch (message.type) {
    case 'run-started':
      sink?.onStarted(message.timestamp);
      return true;
    case 'event':
      sink?.onEvent(message.event);
      return true;
    case 'compiled':
      sink?.onCompiled(message.jobId, message.code);
      return true;
    default:
      return false;
  }
}
