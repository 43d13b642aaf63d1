/**
 * Walks a parsed job body once and finds what the compiler rewrites: the free
 * identifiers (candidates for adaptor imports) and each `$.a.b` lazy-state
 * reference used as an operation argument (with whether its arrow needs
 * parentheses where it stands).
 */
import { CompileError } from './compile-error.ts';
import { child, childList, childrenOf } from './es-node.ts';
import type { EsNode } from './es-node.ts';
import { Scope, declareBlock, declareVars, patternNames } from './scope.ts';

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

/** What `findJobReferences` found. */
export interface JobReferences {
  free: Set<string>;
  lazy: Array<{ node: EsNode; root: EsNode; parens: boolean }>;
}

/** The free names and lazy-state references of a module's top-level statements. */
export function findJobReferences(program: EsNode, body: EsNode[], source: string): JobReferences {
  const moduleScope = new Scope(undefined, false);
  declareVars(program, moduleScope);
  declareBlock(body, moduleScope);
  const result: JobReferences = { free: new Set(), lazy: [] };
  for (const st of body) walk(st, moduleScope, program, result, source);
  return result;
}

function walk(node: EsNode, scope: Scope, parent: EsNode | undefined, result: JobReferences, source: string): void {
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
function walkPattern(pattern: EsNode | undefined, scope: Scope, result: JobReferences, source: string): void {
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
