/**
 * Loaded by AVA before every test file (`ava.require` in package.json): once
 * all of the file's tests and their `t.teardown`s have run, fails the file if
 * it left a child process, a socket, a server or a timer behind, i.e. any
 * resource keeping the event loop alive that was not there when the file
 * started. Closing is often asynchronous, so it waits for them to go, up to a
 * deadline, before failing with the list of what is left.
 *
 * This is an `after.always` hook registered before the file's own code, so it
 * runs before any hook the file registers: tear down with `t.teardown` (as
 * STYLE.md asks), never in `test.after`.
 */
import test from 'ava';

/** How long closes in flight may take before what is left counts as leaked. */
const DRAIN_DEADLINE_MS = 5_000;

/** The count of each kind of resource keeping the event loop alive (TCPSocketWrap, ProcessWrap, Timeout …). */
function activeResources(): Map<string, number> {
  const counts = new Map<string, number>();
  for (const kind of process.getActiveResourcesInfo()) counts.set(kind, (counts.get(kind) ?? 0) + 1);
  return counts;
}

/** What is alive now beyond the baseline, as `kind ×n`. */
export function leakedSince(baseline: ReadonlyMap<string, number>, now: ReadonlyMap<string, number>): string[] {
  const leaked: string[] = [];
  for (const [kind, count] of now) {
    const extra = count - (baseline.get(kind) ?? 0);
    if (extra > 0) leaked.push(`${kind} ×${extra}`);
  }
  return leaked.sort();
}

const baseline = activeResources();

test.after.always('leaves no child process, socket or timer behind', async (t) => {
  const deadline = Date.now() + DRAIN_DEADLINE_MS;
  let leaked = leakedSince(baseline, activeResources());
  while (leaked.length > 0 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 20));
    leaked = leakedSince(baseline, activeResources());
  }
  t.deepEqual(leaked, [], 'resources still alive after every test and teardown: close them in t.teardown');
});
