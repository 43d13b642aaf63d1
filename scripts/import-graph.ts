/**
 * The import rules of src/, checked by `npm run lint` (scripts/check-imports.ts)
 * and by test/scripts/import-graph.test.ts.
 *
 * Two rules, both from docs/architecture.md:
 * - a folder imports only the folders below it in LAYERS (a layer violation);
 * - no file reaches itself through its imports, type-only imports included (a
 *   cycle). A type-only cycle costs nothing at run time but still ties two
 *   files so that neither can be read or changed alone.
 *
 * Imports are found with a regular expression over static `import … from`,
 * `export … from` and `import '…'` statements; relative specifiers only (a
 * package import is never one of ours). Dynamic `import(expr)` of a computed
 * path (the runtime loading compiled job code) is not an edge.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize, relative, sep } from 'node:path';

/**
 * What each top-level entry of src/ may import, besides itself. A folder not
 * listed here fails the check: add it with the folders it may import, and a
 * line in docs/architecture.md saying what it owns.
 */
export const LAYERS: Readonly<Record<string, readonly string[]>> = {
  'index.ts': ['cli', 'config', 'worker', 'server', 'client', 'lanes', 'engine', 'runtime', 'protocol', 'errors', 'version.ts', 'state-machine.ts'],
  cli: ['config', 'worker', 'server', 'client', 'lanes', 'engine', 'runtime', 'protocol', 'errors', 'version.ts', 'state-machine.ts'],
  config: ['lanes', 'protocol', 'errors', 'state-machine.ts'],
  worker: ['config', 'lanes', 'engine', 'runtime', 'protocol', 'errors', 'state-machine.ts'],
  server: ['dashboard', 'protocol', 'errors', 'state-machine.ts'],
  dashboard: ['client', 'protocol', 'errors', 'state-machine.ts'],
  client: ['protocol', 'errors', 'state-machine.ts'],
  lanes: ['protocol', 'errors', 'state-machine.ts'],
  engine: ['runtime', 'protocol', 'errors', 'state-machine.ts'],
  runtime: ['protocol', 'errors', 'state-machine.ts'],
  'state-machine.ts': ['errors'],
  errors: [],
  protocol: [],
  'version.ts': [],
};

/** One import of one of our files by another, paths relative to src/. */
export type ImportEdge = { from: string; to: string; line: number; typeOnly: boolean };

export type ImportProblem =
  | { kind: 'layer'; edge: ImportEdge; message: string }
  | { kind: 'unknown-folder'; file: string; message: string }
  | { kind: 'cycle'; files: readonly string[]; message: string };

const IMPORT_PATTERN = /^[ \t]*(import|export)(\s+type)?\b([^'";]*?)\bfrom\s*['"]([^'"]+)['"]|^[ \t]*import\s*['"]([^'"]+)['"]/gm;

/** The relative imports of one source file, as paths relative to src/. */
export function importsOf(file: string, source: string): ImportEdge[] {
  const edges: ImportEdge[] = [];
  for (const match of source.matchAll(IMPORT_PATTERN)) {
    const specifier = match[4] ?? match[5];
    if (specifier === undefined || !specifier.startsWith('.')) continue;
    const to = normalize(join(dirname(file), specifier)).split(sep).join('/');
    if (to.startsWith('..')) continue; // package.json and the like, outside src/
    const line = source.slice(0, match.index).split('\n').length;
    // `import { type A, type B }` is type-only too, but rare enough to count as a value import.
    const typeOnly = match[2] !== undefined;
    edges.push({ from: file, to, line, typeOnly });
  }
  return edges;
}

/** The top-level entry of src/ a file belongs to: its first folder, or the file itself. */
export function layerOf(file: string): string {
  return file.split('/')[0] ?? file;
}

/** Every problem in a set of files, given as path (relative to src/) → source. */
export function checkImports(sources: ReadonlyMap<string, string>): ImportProblem[] {
  const problems: ImportProblem[] = [];
  const graph = new Map<string, string[]>();
  const unknown = new Set<string>();
  for (const [file, source] of sources) {
    const layer = layerOf(file);
    if (!(layer in LAYERS) && !unknown.has(layer)) {
      unknown.add(layer);
      problems.push({ kind: 'unknown-folder', file, message: `src/${layer} is not in LAYERS in scripts/import-graph.ts: add it with the folders it may import, and say what it owns in docs/architecture.md` });
    }
    const edges = importsOf(file, source);
    graph.set(file, edges.map((edge) => edge.to).filter((to) => sources.has(to)));
    const allowed = LAYERS[layer] ?? [];
    for (const edge of edges) {
      const target = layerOf(edge.to);
      if (target === layer || allowed.includes(target)) continue;
      problems.push({
        kind: 'layer',
        edge,
        message: `src/${edge.from}:${edge.line} imports src/${edge.to}, but ${layer} may import only ${allowed.length ? allowed.join(', ') : 'nothing of ours'} (see docs/architecture.md)`,
      });
    }
  }
  for (const cycle of findCycles(graph)) {
    problems.push({ kind: 'cycle', files: cycle, message: `import cycle: ${[...cycle, cycle[0]].map((f) => `src/${f}`).join(' → ')}` });
  }
  return problems;
}

/**
 * One cycle per strongly connected component of more than one file (or a
 * file importing itself), found with Tarjan's algorithm; each reported as a
 * path through the component so the message names the imports to break.
 */
export function findCycles(graph: ReadonlyMap<string, readonly string[]>): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const components: string[][] = [];
  let next = 0;
  const visit = (node: string): void => {
    index.set(node, next);
    low.set(node, next);
    next += 1;
    stack.push(node);
    onStack.add(node);
    for (const to of graph.get(node) ?? []) {
      if (!index.has(to)) {
        visit(to);
        low.set(node, Math.min(low.get(node) ?? 0, low.get(to) ?? 0));
      } else if (onStack.has(to)) {
        low.set(node, Math.min(low.get(node) ?? 0, index.get(to) ?? 0));
      }
    }
    if (low.get(node) !== index.get(node)) return;
    const component: string[] = [];
    let member: string | undefined;
    do {
      member = stack.pop();
      if (member === undefined) break;
      onStack.delete(member);
      component.push(member);
    } while (member !== node);
    if (component.length > 1 || (graph.get(node) ?? []).includes(node)) components.push(component);
  };
  for (const node of [...graph.keys()].sort()) if (!index.has(node)) visit(node);
  return components.map((component) => pathThrough(graph, new Set(component)));
}

/** A closed path through one component, starting from its first file by name. */
function pathThrough(graph: ReadonlyMap<string, readonly string[]>, members: ReadonlySet<string>): string[] {
  const start = [...members].sort()[0] ?? '';
  // Breadth-first from start back to start, staying inside the component.
  const cameFrom = new Map<string, string>();
  const queue = [start];
  while (queue.length > 0) {
    const node = queue.shift() ?? start;
    for (const to of graph.get(node) ?? []) {
      if (!members.has(to)) continue;
      if (to === start) {
        const path = [node];
        let step = node;
        while (step !== start) {
          step = cameFrom.get(step) ?? start;
          path.unshift(step);
        }
        return path;
      }
      if (!cameFrom.has(to)) {
        cameFrom.set(to, node);
        queue.push(to);
      }
    }
  }
  return [start];
}

/** The .ts files under a folder, as path (relative to it, with /) → source. */
export function readSources(root: string): Map<string, string> {
  const sources = new Map<string, string>();
  const walk = (folder: string): void => {
    for (const entry of readdirSync(folder, { withFileTypes: true })) {
      const path = join(folder, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith('.ts')) sources.set(relative(root, path).split(sep).join('/'), readFileSync(path, 'utf8'));
    }
  };
  walk(root);
  return sources;
}
