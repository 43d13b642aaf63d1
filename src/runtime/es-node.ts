/**
 * A loose view of the ESTree nodes acorn returns, and the few accessors the
 * compiler walks them with: enough to visit any node without a type per kind.
 */
export interface EsNode {
  type: string;
  start: number;
  end: number;
  [key: string]: unknown;
}

export function isNode(value: unknown): value is EsNode {
  return typeof value === 'object' && value !== null && typeof (value as { type?: unknown }).type === 'string';
}

export function child(node: EsNode, key: string): EsNode | undefined {
  const value = node[key];
  return isNode(value) ? value : undefined;
}

export function childList(node: EsNode, key: string): EsNode[] {
  const value = node[key];
  return Array.isArray(value) ? value.filter(isNode) : [];
}

export function childrenOf(node: EsNode): EsNode[] {
  const out: EsNode[] = [];
  for (const [key, value] of Object.entries(node)) {
    if (key === 'loc') continue;
    if (isNode(value)) out.push(value);
    else if (Array.isArray(value)) for (const v of value) if (isNode(v)) out.push(v);
  }
  return out;
}
