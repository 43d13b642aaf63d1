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

/** A loose view of an ESTree node: enough to walk any node generically. */
interface EsNode {
  type: string;
  start: number;
  end: number;
  [key: string]: unknown;
}

class Scope {
  readonly names = new Set<string>();
  readonly parent: Scope | undefined;
  /** True for function scopes: lazy state inside a callback cannot work. */
  readonly isFunction: boolean;

  constructor(parent: Scope | undefined, isFunction: boolean) {
    this.parent = parent;
    this.isFunction = isFunction;
  }

  has(name: string): boolean {
    for (let s: Scope | undefined = this; s; s = s.parent) if (s.names.has(name)) return true;
    return false;
  }

  insideFunction(): boolean {
    for (let s: Scope | undefined = this; s; s = s.parent) if (s.isFunction) return true;
    return false;
  }
}

function isNode(value: unknown): value is EsNode {
  return typeof value === 'object' && value !== null && typeof (value as { type?: unknown }).type === 'string';
}

function child(node: EsNode, key: string): EsNode | undefined {
  const value = node[key];
  return isNode(value) ? value : undefined;
}

function childList(node: EsNode, key: string): EsNode[] {
  const value = node[key];
  return Array.isArray(value) ? value.filter(isNode) : [];
}

function childrenOf(node: EsNode): EsNode[] {
  const out: EsNode[] = [];
  for (const [key, value] of Object.entries(node)) {
    if (key === 'loc') continue;
    if (isNode(value)) out.push(value);
    else if (Array.isArray(value)) for (const v of value) if (isNode(v)) out.push(v);
  }
  return out;
}

const FUNCTION_TYPES = new Set(['FunctionDeclaration', 'FunctionExpression', 'ArrowFunctionExpression']);

/** Names bound by a pattern (`a`, `{a, b: [c]}`, `...rest`, `d = 1`). */
function patternNames(pattern: EsNode | undefined, out: string[] = []): string[] {
  if (!pattern) return out;
  switch (pattern.type) {
    case 'Identifier':
      out.push(pattern['name'] as string);
      break;
    case 'ObjectPattern':
      for (const p of childList(pattern, 'properties')) patternNames(p.type === 'RestElement' ? child(p, 'argument') : child(p, 'value'), out);
      break;
    case 'ArrayPattern':
      for (const e of childList(pattern, 'elements')) patternNames(e, out);
      break;
    case 'RestElement':
      patternNames(child(pattern, 'argument'), out);
      break;
    case 'AssignmentPattern':
      patternNames(child(pattern, 'left'), out);
      break;
  }
  return out;
}

/** Block-level declarations directly in a statement list. */
function declareBlock(statements: EsNode[], scope: Scope): void {
  for (const st of statements) {
    const decl = st.type === 'ExportNamedDeclaration' ? child(st, 'declaration') : st;
    if (!decl) continue;
    if (decl.type === 'VariableDeclaration' && decl['kind'] !== 'var') {
      for (const d of childList(decl, 'declarations')) for (const n of patternNames(child(d, 'id'))) scope.names.add(n);
    } else if (decl.type === 'FunctionDeclaration' || decl.type === 'ClassDeclaration') {
      const id = child(decl, 'id');
      if (id) scope.names.add(id['name'] as string);
    } else if (decl.type === 'ImportDeclaration') {
      for (const s of childList(decl, 'specifiers')) {
        const local = child(s, 'local');
        if (local) scope.names.add(local['name'] as string);
      }
    }
  }
}

/** `var` declarations hoist to the enclosing function (or the module). */
function declareVars(node: EsNode, scope: Scope): void {
  for (const c of childrenOf(node)) {
    if (FUNCTION_TYPES.has(c.type)) continue;
    if (c.type === 'VariableDeclaration' && c['kind'] === 'var') {
      for (const d of childList(c, 'declarations')) for (const n of patternNames(child(d, 'id'))) scope.names.add(n);
    }
    declareVars(c, scope);
  }
}

/** The root identifier of a member chain (`$` in `$.a.b[0]`), if any. */
function memberRoot(node: EsNode): EsNode | undefined {
  let n: EsNode | undefined = node;
  while (n && (n.type === 'MemberExpression' || n.type === 'ChainExpression')) {
    n = n.type === 'ChainExpression' ? child(n, 'expression') : child(n, 'object');
  }
  return n && n.type === 'Identifier' ? n : undefined;
}

/** Parents where `(state) => …` needs no parentheses. */
function arrowNeedsParens(parent: EsNode | undefined, node: EsNode): boolean {
  if (!parent) return true;
  if (parent.type === 'CallExpression' || parent.type === 'NewExpression') return child(parent, 'callee') === node;
  if (parent.type === 'ArrayExpression' || parent.type === 'VariableDeclarator') return false;
  if (parent.type === 'Property') return child(parent, 'value') !== node;
  return true;
}

interface WalkResult {
  free: Set<string>;
  lazy: Array<{ node: EsNode; root: EsNode; parens: boolean }>;
}

function walk(node: EsNode, scope: Scope, parent: EsNode | undefined, result: WalkResult, source: string): void {
  switch (node.type) {
    case 'Identifier':
      if (!scope.has(node['name'] as string)) result.free.add(node['name'] as string);
      return;
    case 'MemberExpression':
    case 'ChainExpression': {
      const root = memberRoot(node);
      if (root && root['name'] === '$' && !scope.has('$')) {
        if (scope.insideFunction()) {
          throw new CompileError(
            'the lazy state operator $ can only be used in an operation argument, not inside a function',
            locate(source, root.start),
          );
        }
        result.lazy.push({ node, root, parens: arrowNeedsParens(parent, node) });
        return;
      }
      if (node.type === 'MemberExpression') {
        walk(child(node, 'object') as EsNode, scope, node, result, source);
        const property = child(node, 'property');
        if (property && node['computed'] === true) walk(property, scope, node, result, source);
        return;
      }
      break;
    }
    case 'Property':
    case 'MethodDefinition':
    case 'PropertyDefinition': {
      const key = child(node, 'key');
      if (key && node['computed'] === true) walk(key, scope, node, result, source);
      const value = child(node, 'value');
      if (value) walk(value, scope, node, result, source);
      return;
    }
    case 'LabeledStatement':
      walk(child(node, 'body') as EsNode, scope, node, result, source);
      return;
    case 'BreakStatement':
    case 'ContinueStatement':
    case 'MetaProperty':
    case 'ImportDeclaration':
      return;
    case 'VariableDeclarator': {
      walkPattern(child(node, 'id'), scope, result, source);
      const init = child(node, 'init');
      if (init) walk(init, scope, node, result, source);
      return;
    }
    case 'FunctionDeclaration':
    case 'FunctionExpression':
    case 'ArrowFunctionExpression': {
      const fnScope = new Scope(scope, true);
      const id = child(node, 'id');
      if (id && node.type === 'FunctionExpression') fnScope.names.add(id['name'] as string);
      const params = childList(node, 'params');
      for (const p of params) for (const n of patternNames(p)) fnScope.names.add(n);
      const body = child(node, 'body') as EsNode;
      if (body.type === 'BlockStatement') {
        declareVars(body, fnScope);
        declareBlock(childList(body, 'body'), fnScope);
      }
      for (const p of params) walkPattern(p, fnScope, result, source);
      if (body.type === 'BlockStatement') for (const st of childList(body, 'body')) walk(st, fnScope, body, result, source);
      else walk(body, fnScope, node, result, source);
      return;
    }
    case 'ClassDeclaration':
    case 'ClassExpression': {
      const superClass = child(node, 'superClass');
      if (superClass) walk(superClass, scope, node, result, source);
      const classScope = new Scope(scope, false);
      const id = child(node, 'id');
      if (id) classScope.names.add(id['name'] as string);
      walk(child(node, 'body') as EsNode, classScope, node, result, source);
      return;
    }
    case 'BlockStatement':
    case 'StaticBlock': {
      const blockScope = new Scope(scope, false);
      declareBlock(childList(node, 'body'), blockScope);
      for (const st of childList(node, 'body')) walk(st, blockScope, node, result, source);
      return;
    }
    case 'ForStatement':
    case 'ForInStatement':
    case 'ForOfStatement': {
      const loopScope = new Scope(scope, false);
      const head = child(node, node.type === 'ForStatement' ? 'init' : 'left');
      if (head) declareBlock([head], loopScope);
      for (const c of childrenOf(node)) walk(c, loopScope, node, result, source);
      return;
    }
    case 'SwitchStatement': {
      const switchScope = new Scope(scope, false);
      walk(child(node, 'discriminant') as EsNode, scope, node, result, source);
      const cases = childList(node, 'cases');
      declareBlock(cases.flatMap((c) => childList(c, 'consequent')), switchScope);
      for (const c of cases) walk(c, switchScope, node, result, source);
      return;
    }
    case 'CatchClause': {
      const catchScope = new Scope(scope, false);
      const param = child(node, 'param');
      for (const n of patternNames(param)) catchScope.names.add(n);
      walkPattern(param, catchScope, result, source);
      walk(child(node, 'body') as EsNode, catchScope, node, result, source);
      return;
    }
  }
  for (const c of childrenOf(node)) walk(c, scope, node, result, source);
}

/** In a binding pattern only default values and computed keys are references. */
function walkPattern(pattern: EsNode | undefined, scope: Scope, result: WalkResult, source: string): void {
  if (!pattern) return;
  switch (pattern.type) {
    case 'Identifier':
      return;
    case 'AssignmentPattern':
      walkPattern(child(pattern, 'left'), scope, result, source);
      walk(child(pattern, 'right') as EsNode, scope, pattern, result, source);
      return;
    case 'ObjectPattern':
      for (const p of childList(pattern, 'properties')) {
        if (p.type === 'RestElement') walkPattern(child(p, 'argument'), scope, result, source);
        else {
          const key = child(p, 'key');
          if (key && p['computed'] === true) walk(key, scope, p, result, source);
          walkPattern(child(p, 'value'), scope, result, source);
        }
      }
      return;
    case 'ArrayPattern':
      for (const e of childList(pattern, 'elements')) walkPattern(e, scope, result, source);
      return;
    case 'RestElement':
      walkPattern(child(pattern, 'argument'), scope, result, source);
      return;
    default:
      // e.g. a MemberExpression target in `for (a.b of …)`.
      walk(pattern, scope, undefined, result, source);
  }
}

function locate(source: string, offset: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < offset && i < source.length; i++) {
    if (source.charCodeAt(i) === 10) {
      line++;
      lineStart = i + 1;
    }
  }
  return { line, column: offset - lineStart };
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

  const moduleScope = new Scope(undefined, false);
  declareVars(program, moduleScope);
  declareBlock(body, moduleScope);
  const result: WalkResult = { free: new Set(), lazy: [] };
  for (const st of body) walk(st, moduleScope, program, result, source);

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
