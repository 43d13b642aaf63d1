/**
 * The module a job's code links against for its adaptor, made ahead of the
 * run in the warm spare thread, in the `vm` contexts made ahead for it
 * (prepared-contexts.ts).
 *
 * @openfn/runtime links a job's `import { fn } from "/…/adaptor.js"` by
 * importing the adaptor again and wrapping its namespace in a `vm`
 * SyntheticModule of the job's context, one export at a time: 0.2 ms between
 * a run reaching its thread and its first line of job code (traced
 * 2026-12-01), and nothing about it depends on the run but which context the
 * job gets. So the spare, once its contexts are made, wraps each preloaded
 * adaptor in each of them; the runtime is given `linkJobImport` as its linker
 * and takes the wrapped module that belongs to the job's context, once.
 * Anything else is linked as the runtime would: an adaptor by absolute path is
 * imported and wrapped then, and any other specifier is refused, naming it.
 *
 * A wrapped module holds the adaptor's own exports, which the run's thread
 * imported anyway, and belongs to one context of one run's thread: nothing of
 * it outlives the run.
 */
import { ImportError } from '@openfn/runtime';
import vm from 'node:vm';
import { importAdaptor, linkedTarget } from './adaptor-import.ts';

async function wrap(namespace: Record<string, unknown>, context: vm.Context): Promise<vm.SyntheticModule> {
  const target = linkedTarget(namespace);
  const names = Object.keys(target);
  const module = new vm.SyntheticModule(
    names,
    function setExports(this: vm.SyntheticModule) {
      for (const name of names) this.setExport(name, target[name]);
    },
    // Named, so it does not take the context's first default name, `vm:module(0)`: the runtime tells
    // job code's errors from an adaptor's by that name in the stack.
    { context, identifier: 'lanes:adaptor' },
  );
  await module.link(() => {
    throw new Error('an adaptor module links nothing');
  });
  await module.evaluate();
  return module;
}

/** Wrapped adaptor modules not yet taken, by adaptor entry path, each with the context it belongs to. */
const ready = new Map<string, Array<{ context: vm.Context; module: vm.SyntheticModule }>>();

/**
 * Wraps the adaptor at `entryPath` in each of `contexts`, ahead of the run,
 * and returns the modules, in the order of the contexts. A failure is not an
 * error (none is returned): the job that needs the adaptor links it then, and
 * reports its own error.
 */
export async function prepareLinks(entryPath: string, contexts: readonly vm.Context[]): Promise<vm.Module[]> {
  try {
    const namespace = await importAdaptor(entryPath);
    const modules = await Promise.all(contexts.map(async (context) => ({ context, module: await wrap(namespace, context) })));
    ready.set(entryPath, [...(ready.get(entryPath) ?? []), ...modules]);
    return modules.map(({ module }) => module);
  } catch {
    return []; // Linked at the run instead.
  }
}

function takeReady(specifier: string, context: vm.Context): vm.SyntheticModule | undefined {
  const modules = ready.get(specifier);
  const index = modules?.findIndex((entry) => entry.context === context) ?? -1;
  if (modules === undefined || index < 0) return undefined;
  const [taken] = modules.splice(index, 1);
  return taken?.module;
}

/** The runtime's linker for one run's job code (its `linker.linker` option). */
export type JobLinker = (specifier: string, context: vm.Context) => Promise<vm.Module>;

/**
 * A linker for job code that may import only `adaptorEntryPaths` (its run's
 * adaptors, which the compiler names by absolute path): the module made ahead
 * for the job's context, or the adaptor wrapped now. Any other import (a
 * builtin, a package, another file) is refused, naming it.
 */
export function jobLinker(adaptorEntryPaths: ReadonlySet<string>): JobLinker {
  return async (specifier, context) => {
    if (!adaptorEntryPaths.has(specifier)) throw new ImportError(`Failed to import module "${specifier}": job code can import only its adaptor`);
    const taken = takeReady(specifier, context);
    if (taken !== undefined) return taken;
    let namespace: Record<string, unknown>;
    try {
      namespace = await importAdaptor(specifier);
    } catch (error) {
      throw new ImportError(`Failed to import module ${specifier} (${error instanceof Error ? error.message : 'reason unknown'})`);
    }
    return wrap(namespace, context);
  };
}
