/**
 * Adaptor modules as a run's thread imports them: once per thread (a thread
 * serves one run), by entry file. The warm spare imports the preloaded ones,
 * and the run then takes the namespace from here instead of asking the module
 * loader again (about 0.1 ms on the path to the first line of job code).
 */

/** The adaptors this thread has imported, by entry file. */
const adaptorNamespaces = new Map<string, Promise<Record<string, unknown>>>();

export function importAdaptor(entryPath: string): Promise<Record<string, unknown>> {
  let namespace = adaptorNamespaces.get(entryPath);
  if (namespace === undefined) {
    namespace = import(entryPath) as Promise<Record<string, unknown>>;
    adaptorNamespaces.set(entryPath, namespace);
    // A failed import is not kept: the run that needs the adaptor tries again and reports its own error.
    namespace.catch(() => adaptorNamespaces.delete(entryPath));
  }
  return namespace;
}

/**
 * What @openfn/runtime's linker exposes of a module, as it decides it: the
 * inner default of a transpiled CommonJS module, the object of a lone default
 * export, or else the namespace itself.
 */
export function linkedTarget(namespace: Record<string, unknown>): Record<string, unknown> {
  const inner = namespace['default'] as Record<string, unknown> | null | undefined;
  if (namespace['__esModule'] && inner?.['default']) return inner['default'] as Record<string, unknown>;
  if (Object.keys(namespace).length === 1 && inner && Object.keys(inner).length > 0) return inner;
  return namespace;
}

/** The names the runtime's linker will expose for a module (it unwraps a lone default export). */
export function exportedNames(namespace: Record<string, unknown>): string[] {
  const keys = Object.keys(namespace);
  const inner = namespace['default'];
  if (keys.length === 1 && keys[0] === 'default' && typeof inner === 'object' && inner !== null) return Object.keys(inner);
  return keys.filter((k) => k !== 'default');
}
