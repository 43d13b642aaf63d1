/**
 * `vm` contexts made ahead of the run, in a warm spare thread, for the
 * contexts @openfn/runtime makes when the run comes: one for the plan's edge
 * conditions and one per job, each a fresh `vm.createContext` with code
 * generation from strings and wasm off. Creating a context is the single
 * largest cost between a run reaching its thread and its first line of job
 * code (0.4-0.7 ms each, two for a one-job run; measured 2026-11-30), and
 * nothing about it depends on the run: the context is empty until the
 * runtime puts the run's globals in it.
 *
 * So the thread makes a few empty contexts once its warm-up is done, and
 * `vm.createContext` is wrapped: a call with exactly the runtime's options on
 * a plain object that is not yet a context takes a prepared context, defines
 * the object's properties on it (a context reads its globals from that
 * object, whenever they were put there) and returns it. Every context is
 * still used by one run only, in the thread that serves that run alone, and
 * nothing ran in it before; any other call, or one after the prepared
 * contexts are used up, creates a context as before.
 */
import { createRequire, syncBuiltinESMExports } from 'node:module';
import type { CreateContextOptions } from 'node:vm';

type CreateContext = (sandbox?: object, options?: CreateContextOptions) => object;

/** Whether `options` are exactly the runtime's: `{ codeGeneration: { strings: false, wasm: false } }`. */
function isRuntimeOptions(options: CreateContextOptions | undefined): boolean {
  if (options === undefined || Object.keys(options).length !== 1) return false;
  const generation = options.codeGeneration;
  return generation !== undefined && Object.keys(generation).length === 2 && generation.strings === false && generation.wasm === false;
}

/** The contexts made ahead and not yet handed out, and `node:vm`'s own `createContext`, once wrapped. */
const prepared: object[] = [];
let original: CreateContext | undefined;

/**
 * Makes `count` contexts now and has `vm.createContext` hand them out (see
 * above); returns them. Called once per thread, after the warm-up, before the
 * run arrives; a second call only adds contexts.
 */
export function prepareContexts(count: number): object[] {
  const require = createRequire(import.meta.url);
  const vm = require('node:vm') as { createContext: CreateContext; isContext: (value: object) => boolean };
  const create = (original ??= vm.createContext);
  const made: object[] = [];
  for (let i = 0; i < count; i++) made.push(create({}, { codeGeneration: { strings: false, wasm: false } }));
  prepared.push(...made);
  if (vm.createContext !== create) return made;
  vm.createContext = function createContext(sandbox?: object, options?: CreateContextOptions): object {
    const plain = typeof sandbox === 'object' && sandbox !== null && Object.getPrototypeOf(sandbox) === Object.prototype && !vm.isContext(sandbox);
    const context = plain && isRuntimeOptions(options) ? prepared.shift() : undefined;
    if (context === undefined) return create(sandbox, options);
    Object.defineProperties(context, Object.getOwnPropertyDescriptors(sandbox));
    return context;
  };
  syncBuiltinESMExports();
  return made;
}
