/**
 * Compiles a Lightning job body into the ES module @openfn/runtime executes.
 *
 * Lightning sends job code as a list of operation calls, e.g.
 * `get('https://…'); each($.items, fn(s => s))`. The runtime wants a module
 * whose default export is the array of operations, importing the adaptor
 * functions it uses. Three transforms, all on the source text with
 * magic-string so the rest of the code is left byte-for-byte as written:
 *
 * 1. every top-level expression statement moves into `export default [...]`
 *    (at the end, like OpenFn's compiler, so declarations before or after an
 *    operation are initialised when the array is built);
 * 2. every free identifier that an adaptor exports becomes a named import;
 * 3. `$.a.b` used as an operation argument becomes `(state) => state.a.b`.
 */
import { parse } from 'acorn';
import MagicString from 'magic-string';
import { child, childList } from './es-node.ts';
import type { EsNode } from './es-node.ts';
import { findJobReferences } from './job-references.ts';
import { CompileError } from './compile-error.ts';

export interface CompileAdaptor {
  /** Module specifier written into the import (a package name or an absolute file path). */
  importFrom: string;
  /** Names the adaptor module exports. */
  exports: readonly string[];
}

export interface CompileOptions {
  adaptors?: readonly CompileAdaptor[];
  /** Used in error messages, e.g. the job name. */
  name?: string;
  /**
   * Global names of an operation to run before the job's operations and one
   * to run after them (the run's oversized-state guard). Only for bodies
   * without their own `export default`.
   */
  bracket?: readonly [before: string, after: string];
}

export interface CompiledJob {
  code: string;
  /** Imported names per module specifier, in import order. */
  imports: Record<string, string[]>;
}

function parseJob(source: string, name: string | undefined): EsNode {
  try {
    return parse(source, {
      ecmaVersion: 'latest',
      sourceType: 'module',
      allowAwaitOutsideFunction: true,
      allowReturnOutsideFunction: false,
    }) as unknown as EsNode;
  } catch (error) {
    const loc = (error as { loc?: { line: number; column: number } }).loc;
    const what = error instanceof Error ? error.message : String(error);
    const where = name ? ` in job ${name}` : '';
    throw new CompileError(`SyntaxError: ${what}${where}`, loc, { cause: error });
  }
}

/**
 * Compiles one job body. Throws `CompileError` (with the line) when the body
 * does not parse.
 */
export function compileJob(source: string, options: CompileOptions = {}): CompiledJob {
  const program = parseJob(source, options.name);
  const body = childList(program, 'body');
  const s = new MagicString(source);

  const result = findJobReferences(program, body, source);

  for (const { node, root, parens } of result.lazy) {
    s.overwrite(root.start, root.end, 'state');
    s.prependLeft(node.start, parens ? '((state) => ' : '(state) => ');
    if (parens) s.appendRight(node.end, ')');
  }

  const hasDefaultExport = body.some((st) => st.type === 'ExportDefaultDeclaration');
  if (!hasDefaultExport) {
    const operations: string[] = [];
    for (const st of body) {
      if (st.type !== 'ExpressionStatement' || typeof st['directive'] === 'string') continue;
      const expression = child(st, 'expression') as EsNode;
      operations.push(s.slice(expression.start, expression.end));
      s.remove(st.start, st.end);
    }
    const bracketed = options.bracket === undefined ? operations : [options.bracket[0], ...operations, options.bracket[1]];
    s.append(`\nexport default [${bracketed.join(', ')}];\n`);
  }

  const imports: Record<string, string[]> = {};
  const taken = new Set<string>();
  for (const adaptor of options.adaptors ?? []) {
    const exported = new Set(adaptor.exports);
    const names = [...result.free].filter((n) => exported.has(n) && !taken.has(n)).sort();
    if (names.length === 0) continue;
    for (const n of names) taken.add(n);
    imports[adaptor.importFrom] = names;
  }
  // Imports go on the first line so the job's own line numbers stay put.
  const importLines = Object.entries(imports)
    .map(([from, names]) => `import { ${names.join(', ')} } from ${JSON.stringify(from)};`)
    .join(' ');
  if (importLines) s.prepend(`${importLines} `);
  return { code: s.toString(), imports };
}
