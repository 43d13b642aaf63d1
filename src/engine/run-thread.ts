/**
 * Entry point of a run's worker thread. A thread serves exactly one run: it
 * boots as a warm spare (runtime loaded, known adaptors imported), waits for
 * its run, executes it and reports the end; the child then terminates it.
 * Nothing of one run (globals, module instances) can reach another.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { executePlan, importAdaptor } from '../runtime/execute-plan.ts';
import type { ChildToThread, ThreadData, ThreadToChild } from './ipc-messages.ts';

const port = parentPort;
if (!port) throw new Error('run-thread.ts must run in a worker thread');

const post = (message: ThreadToChild): void => port.postMessage(message);
const pendingCredentials = new Map<number, { resolve: (body: unknown) => void; reject: (error: Error) => void }>();
let nextRequestId = 1;
let started = false;

async function preload(entryPaths: readonly string[]): Promise<void> {
  // A failed preload is not an error: the run that needs the adaptor reports it.
  await Promise.all(entryPaths.map((p) => importAdaptor(p).catch(() => undefined)));
}

port.on('message', (message: ChildToThread) => {
  switch (message.type) {
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
      void executePlan(message.request, {
        emit: (event) => post({ type: 'event', event }),
        fetchCredential: (credentialId) =>
          new Promise((resolve, reject) => {
            const requestId = nextRequestId++;
            pendingCredentials.set(requestId, { resolve, reject });
            post({ type: 'credential-request', requestId, credentialId });
          }),
      }).then((end) => post({ type: 'end', end }));
      return;
    }
  }
});

await preload((workerData as ThreadData).preload);
post({ type: 'ready' });
