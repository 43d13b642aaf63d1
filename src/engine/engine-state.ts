/** The engine's states and the moves between them (described at the top of `engine.ts`). */
export type EngineState = 'created' | 'starting' | 'running' | 'stopping' | 'stopped';

export const ENGINE_TRANSITIONS: Record<EngineState, readonly EngineState[]> = {
  created: ['starting'],
  starting: ['running', 'stopping'],
  running: ['stopping'],
  stopping: ['stopped'],
  stopped: [],
};
