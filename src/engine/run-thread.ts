/**
 * Entry point of a run's worker thread. A thread serves exactly one run: it
 * boots as a warm spare (runtime loaded, known adaptors imported), waits for
 * its run, executes it and reports the end; the child then terminates it.
 * Nothing of one run (globals, module instances) can reach another.
 */
import { setPriority } from 'node:os';
import { workerData } from 'node:worker_threads';
import { timestampMicros } from '../protocol/timestamp.ts';
import { importAdaptor } from '../runtime/adaptor-import.ts';
import { executePlan } from '../runtime/execute-plan.ts';
import { prepareContexts } from '../runtime/prepared-contexts.ts';
import { prepareLinks } from '../runtime/prepared-links.ts';
import { prepareJobModules } from '../runtime/prepared-modules.ts';
import { prepareRunLoggers } from '../runtime/run-loggers.ts';
import type { ChildToThread, ThreadData, ThreadToChild } from './ipc-messages.ts';
import { lockDownThread } from './thread-lockdown.ts';
import { MailboxWriter } from './thread-mailbox.ts';
import { takeParentPort } from './thread-port.ts';

const threadData = workerData as ThreadData;
/** `vm` contexts made ahead for the run (prepared-contexts.ts): a one-job run makes two. */
const PREPARED_CONTEXTS = 2;
// Before any work: on Linux the nice value is per thread, so this thread (the boot of a spare, then
// job code) yields to the worker and to the child's relay thread. Raising it needs no privilege; if
// the system refuses anyway, the thread runs at the child's priority.
/** Taken before `lockDownThread` replaces the builtin's export (and the live binding with it). */
const setThreadPriority = setPriority;
let nice = 0;
/** Lowers this thread's priority to `value` if it is above it; never raises it (that needs privileges, and job code must not have it). */
function lowerPriorityTo(value: number): void {
  if (value <= nice) return;
  try {
    setThreadPriority(value);
    nice = value;
  } catch {
    // Not fatal: only the priority of job work relative to the worker's is lost.
  }
}
lowerPriorityTo(threadData.nice);
// Before any adaptor or job code is loaded into this thread (it also takes setPriority away from
// everything but the function above, which job code cannot reach).
lockDownThread();
const port = takeParentPort();

// The first turn's reports go to shared memory instead (thread-mailbox.ts). Job code must not write there,
// so the buffer leaves `workerData` (which it could reach) before any job code is loaded.
const mailbox = threadData.mailbox === undefined ? undefined : new MailboxWriter(threadData.mailbox);
Reflect.deleteProperty(threadData, 'mailbox');

/** Posts to the child. Anything posted closes the mailbox: what it holds is always older than a post. */
const post = (message: ThreadToChild): void => {
  mailbox?.close();
  port.post(message);
};
/** A report that need not wake the child: into the mailbox while the first turn lasts, else posted. */
const report = (message: ThreadToChild): void => {
  if (mailbox?.write(message) !== true) post(message);
};
/** Taken before any job code runs, which could replace the global. */
const afterThisTurn = setImmediate;
const pendingCredentials = new Map<number, { resolve: (body: unknown) => void; reject: (error: Error) => void }>();
let nextRequestId = 1;
let started = false;

async function preload(entryPaths: readonly string[]): Promise<void> {
  // A failed preload is not an error: the run that needs the adaptor reports it.
  await Promise.all(entryPaths.map((p) => importAdaptor(p).catch(() => undefined)));
}

port.onMessage((received) => {
  const message = received as ChildToThread;
  switch (message.type) {
    case 'warm':
      return;
    case 'preload':
      if (!started) void preload(message.entryPaths);
      return;
    case 'credential-reply': {
      const pending = pendingCredentials.get(message.requestId);
      pendingCredentials.delete(message.requestId);
      if (!pending) return;
      if (message.ok) pending.resolve(message.body);
      else pending.reject(new Error(message.message));
      return;
    }
    case 'run': {
      if (started) return;
      started = true;
      // A spare booted for an urgent run, given another: it yields like that run's own class.
      lowerPriorityTo(message.nice);
      mailbox?.open();
      report({ type: 'started', timestamp: timestampMicros() });
      void executePlan(message.request, {
        emit: (event) => report({ type: 'event', event }),
        compiled: (jobId, code) => report({ type: 'compiled', jobId, code }),
        fetchCredential: (credentialId) =>
          new Promise((resolve, reject) => {
            const requestId = nextRequestId++;
            pendingCredentials.set(requestId, { resolve, reject });
            post({ type: 'credential-request', requestId, credentialId });
          }),
      }).then((end) => post({ type: 'end', end }));
      // The check phase after this turn: the job awaits something (or is done). Until then the run's
      // reports wait in the mailbox (thread-mailbox.ts); a run that ends within the turn posts its end
      // first, and the child reads them before it.
      afterThisTurn(() => post({ type: 'first-turn-ended' }));
      return;
    }
  }
});

/**
 * Runs a throwaway plan so the compiler and the runtime's code paths are
 * already compiled by V8 when the real run arrives: in a fresh isolate their
 * first execution costs more than the run itself. Its first job is compiled
 * here; its second links a preloaded adaptor (`import * as`, never calling
 * it), as a real job's module is linked against its adaptor: that path alone
 * cost a run 1-2 ms cold. It shares nothing with the real run but this
 * thread's code caches and the adaptor's module, which no code of the
 * warm-up touches.
 */
async function warmUp(adaptorEntryPath: string | undefined): Promise<void> {
  const linked = adaptorEntryPath === undefined ? [] : [{ id: 'warm-link', adaptorEntryPath }];
  await executePlan(
    {
      runId: 'warm-up',
      jobs: [
        { id: 'warm-up', body: "(state => { console.log('warm'); return { ...state }; });\n(state => state);", adaptor: null, credentialId: null },
        ...linked.map(({ id, adaptorEntryPath: entryPath }) => ({
          id,
          body: '',
          adaptor: { specifier: 'warm-up', name: 'warm-up', version: '0', entryPath },
          credentialId: null,
          compiled: `import * as adaptor from ${JSON.stringify(entryPath)};\nexport default [(state) => state];\n`,
        })),
      ],
      triggerIds: ['t'],
      edges: [
        { id: 'e', source_trigger_id: 't', target_job_id: 'warm-up', condition: 'always' },
        ...linked.map(({ id }) => ({ id: `e-${id}`, source_job_id: 'warm-up', target_job_id: id, condition: 'on_job_success' as const })),
      ],
      startingNodeId: 't',
      input: { data: { x: 1 } },
      payloadLimitMb: 1,
      logPayloadLimitMb: 1,
      statePropsToRemove: ['configuration'],
    },
    { emit: () => undefined, fetchCredential: async () => ({}) },
  );
}

const preloaded = threadData.preload;
await preload(preloaded);
await warmUp(preloaded[0]).catch(() => undefined);
// After the warm-up, which must not use them: the run's edge conditions and its first job each take one.
const contexts = prepareContexts(PREPARED_CONTEXTS);
// In those contexts, the modules job code links for its adaptor (prepared-links.ts).
await Promise.all(preloaded.map((entryPath) => prepareLinks(entryPath, contexts)));
// And the run's loggers (run-loggers.ts), and the module of the job the run is expected to start with (prepared-modules.ts).
prepareRunLoggers();
if (threadData.expectedJob !== undefined) prepareJobModules(threadData.expectedJob, contexts);
post({ type: 'ready' });
