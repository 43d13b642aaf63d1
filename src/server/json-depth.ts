/**
 * Nesting depth of a parsed JSON value, computed without recursion. JSON.parse
 * accepts any depth, but JSON.stringify (and every recursive walk) overflows
 * the stack on a few thousand levels, so a frame or body nested that deeply
 * must be refused up front instead of failing half-way through a write.
 */

/** Deepest nesting the server accepts in a payload or body; real plans and states stay far below. */
export const MAX_JSON_DEPTH = 256;

/** Whether `value` nests arrays and objects more than `limit` levels deep. */
export function exceedsDepth(value: unknown, limit = MAX_JSON_DEPTH): boolean {
  const stack: Array<[unknown, number]> = [[value, 0]];
  while (stack.length > 0) {
    const [current, depth] = stack.pop() as [unknown, number];
    if (typeof current !== 'object' || current === null) continue;
    if (depth >= limit) return true;
    const children = Array.isArray(current) ? current : Object.values(current);
    for (const child of children) {
      if (typeof child === 'object' && child !== null) stack.push([child, depth + 1]);
    }
  }
  return false;
}
