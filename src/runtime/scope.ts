/**
 * Lexical scopes of a job body: which names a block, a function or the module
 * declares, so that the compiler can tell a free identifier (an adaptor
 * function to import) from one the job binds itself.
 */
import { child, childList, childrenOf } from './es-node.ts';
import type { EsNode } from './es-node.ts';

export class Scope {
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

export const FUNCTION_TYPES = new Set(['FunctionDeclaration', 'FunctionExpression', 'ArrowFunctionExpression']);

/** Names bound by a pattern (`a`, `{a, b: [c]}`, `...rest`, `d = 1`). */
export function patternNames(pattern: EsNode | undefined, out: string[] = []): string[] {
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
export function declareBlock(statements: EsNode[], scope: Scope): void {
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
export function declareVars(node: EsNode, scope: Scope): void {
  for (const c of childrenOf(node)) {
    if (FUNCTION_TYPES.has(c.type)) continue;
    if (c.type === 'VariableDeclaration' && c['kind'] === 'var') {
      for (const d of childList(c, 'declarations')) for (const n of patternNames(child(d, 'id'))) scope.names.add(n);
    }
    declareVars(c, scope);
  }
}
