/**
 * The module of the job a run is expected to start with, compiled ahead in
 * the warm spare, in the `vm` contexts made ahead for the run
 * (prepared-contexts.ts).
 *
 * @openfn/runtime compiles a job's code into a `vm.SourceTextModule` of the
 * job's context when the step starts: 0.16-0.19 ms on the path to the first
 * line of job code (traced 2026-12-01), the same work for the same text run
 * after run. A child's next run is very often the job it ran last (a fast
 * lane serving one workflow, a trickle of the same webhook), so the child
 * tells each spare it boots the compiled text of its last run's first job,
 * and the spare compiles it into each of its prepared contexts. When the
 * runtime then asks for a module of exactly that text in that context, with
 * nothing but the context as options, it gets the module compiled ahead; any
 * other call compiles as before.
 *
 * Only compiled, never evaluated: no code of it runs before the run does. A
 * module compiled ahead belongs to one context of one run's thread and is
 * handed out once; a text that is not the run's is never used. It is named
 * `vm:module(0)`, the name the runtime's own module would get in a fresh
 * context (and reads in stack traces to tell job errors from adaptor errors);
 * naming it leaves that default name free for a module compiled at the run.
 */
import { createRequire, syncBuiltinESMExports } from 'node:module';
import type { Context, SourceTextModule as VmSourceTextModule, SourceTextModuleOptions } from 'node:vm';

/** The name @openfn/runtime's job module gets: the first default name of a fresh context. */
export const JOB_MODULE_IDENTIFIER = 'vm:module(0)';

type SourceTextModuleClass = new (code: string, options?: SourceTextModuleOptions) => VmSourceTextModule;

const ready: Array<{ code: string; context: Context; module: VmSourceTextModule }> = [];
let original: SourceTextModuleClass | undefined;

/** The module compiled ahead for exactly this call of the runtime's (its only option the context), taken once. */
function take(code: string, options: SourceTextModuleOptions | undefined): VmSourceTextModule | undefined {
  if (options === undefined || options.context === undefined || Object.keys(options).length !== 1) return undefined;
  const index = ready.findIndex((entry) => entry.context === options.context && entry.code === code);
  if (index < 0) return undefined;
  return ready.splice(index, 1)[0]?.module;
}

/** Has `vm.SourceTextModule` hand out the modules compiled ahead (once per thread). */
function install(): SourceTextModuleClass {
  if (original !== undefined) return original;
  const require = createRequire(import.meta.url);
  const vm = require('node:vm') as { SourceTextModule: SourceTextModuleClass };
  const Base = vm.SourceTextModule;
  original = Base;
  vm.SourceTextModule = class SourceTextModule extends Base {
    constructor(code: string, options?: SourceTextModuleOptions) {
      const compiled = take(code, options);
      if (compiled !== undefined) return compiled;
      super(code, options);
    }
  };
  syncBuiltinESMExports();
  return Base;
}

/**
 * Compiles `code` into a module of each of `contexts` for the run to come,
 * and returns them. Text that does not compile is left for the run, which
 * reports its own error.
 */
export function prepareJobModules(code: string, contexts: readonly Context[]): VmSourceTextModule[] {
  const Compile = install();
  const made: VmSourceTextModule[] = [];
  for (const context of contexts) {
    try {
      const module = new Compile(code, { context, identifier: JOB_MODULE_IDENTIFIER });
      ready.push({ code, context, module });
      made.push(module);
    } catch {
      return made;
    }
  }
  return made;
}
