/**
 * The engine's states, the data each carries, and the moves between them
 * (described at the top of `engine.ts`): the adaptor repo and the runtime's
 * version exist only while the engine runs, and a stop in flight is its
 * `stopping` state's promise.
 */
import type { AdaptorRepo } from '../runtime/adaptor-repo.ts';
import type { TransitionTable } from '../state-machine.ts';

export type EngineLifecycle =
  | { readonly kind: 'created' }
  | { readonly kind: 'starting' }
  | { readonly kind: 'running'; readonly repo: AdaptorRepo; readonly runtimeVersion: string }
  | { readonly kind: 'stopping'; readonly done: Promise<void> }
  | { readonly kind: 'stopped' };

export type EngineState = EngineLifecycle['kind'];

export const ENGINE_TRANSITIONS: TransitionTable<EngineLifecycle> = {
  created: ['starting', 'stopping'],
  starting: ['running', 'stopping'],
  running: ['stopping'],
  stopping: ['stopped'],
  stopped: [],
};
