/**
 * Takes a run thread's `parentPort` out of job code's reach. Job code that
 * escapes the `vm` context reaches the thread's own `process` and builtins;
 * with the port it could post events, a credential request or the run's end
 * as if the runtime had. So, before any adaptor or job code is loaded:
 *
 * - `worker_threads.parentPort` becomes `null` (non-writable, and the ESM
 *   named export is re-synced), so `getBuiltinModule('worker_threads')` and
 *   `import` hand out nothing;
 * - `postMessage` and `Reflect.apply` are captured here, so replacing
 *   `MessagePort.prototype.postMessage` (or `Reflect.apply`) later cannot
 *   catch the port as `this` when the runtime posts;
 * - the prototypes of the port (MessagePort, Node's event target, EventTarget)
 *   are frozen, so no method the port's own message dispatch looks up there can
 *   be replaced to catch it either.
 *
 * The child checks every message anyway (thread-message-guard.ts): this file
 * is the first line, that one the second.
 */
import { createRequire, syncBuiltinESMExports } from 'node:module';
import type { MessagePort } from 'node:worker_threads';

export interface ThreadPort {
  /** Posts to the child with the methods captured at lockdown. */
  post(message: unknown): void;
  /** Listens to the child; call before any job code runs. */
  onMessage(listener: (message: unknown) => void): void;
}

export function takeParentPort(): ThreadPort {
  const require = createRequire(import.meta.url);
  const workerThreads = require('node:worker_threads') as { parentPort: MessagePort | null } & Record<string, unknown>;
  const port = workerThreads.parentPort;
  if (!port) throw new Error('a run thread must run in a worker thread');
  Object.defineProperty(workerThreads, 'parentPort', { value: null, writable: false, configurable: false, enumerable: true });
  syncBuiltinESMExports();

  const apply = Reflect.apply;
  const postMessage = port.postMessage;
  const on = port.on;
  for (let proto: object | null = Object.getPrototypeOf(port) as object | null; proto && proto !== Object.prototype; proto = Object.getPrototypeOf(proto) as object | null) {
    Object.freeze(proto);
  }
  return {
    post: (message) => {
      apply(postMessage, port, [message]);
    },
    onMessage: (listener) => {
      apply(on, port, ['message', listener]);
    },
  };
}
