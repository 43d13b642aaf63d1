/**
 * RunReporter on its own, against a channel that answers every push a few
 * microtasks later: an event sent just as the queue ran dry is still pushed,
 * and `drained()` waits for it.
 */
import test from 'ava';
import type { Channel } from 'phoenix';
import pino from 'pino';
import { RunReporter } from '../../src/worker/run-reporter.ts';

/** A channel whose pushes are answered `ok` after `hops` microtasks; it records every event pushed. */
function answeringChannel(pushed: string[], onPush: (event: string) => void): Channel {
  const push = (event: string) => {
    pushed.push(event);
    const receivers = new Map<string, (response?: unknown) => void>();
    queueMicrotask(() => {
      receivers.get('ok')?.({});
      onPush(event);
    });
    const handle = {
      receive(status: string, callback: (response?: unknown) => void) {
        receivers.set(status, callback);
        return handle;
      },
    };
    return handle;
  };
  // Never drops: a reporter watches for drops (channel-drops.ts).
  return { push, onError: () => 0, off: () => undefined } as unknown as Channel;
}

function afterMicrotasks(count: number, fn: () => void): void {
  if (count === 0) fn();
  else queueMicrotask(() => afterMicrotasks(count - 1, fn));
}

test('an event sent as the queue runs dry is still pushed, and drained() waits for it', async (t) => {
  // The window between the last reply and the drain's end is a few microtasks wide: try every offset.
  for (const joined of [undefined, Promise.resolve(true)]) {
    for (let hops = 0; hops < 16; hops += 1) {
      const pushed: string[] = [];
      let reporter: RunReporter | undefined;
      const channel = answeringChannel(pushed, (event) => {
        if (event === 'first') afterMicrotasks(hops, () => reporter?.send('late', {}));
      });
      reporter = new RunReporter({
        runId: 'run-1',
        channel,
        messageTimeoutMs: 1000,
        batchLogs: false,
        idempotent: false,
        logger: pino({ level: 'silent' }),
        batchKey: () => undefined,
        ...(joined === undefined ? {} : { joined }),
      });
      reporter.send('first', {});
      // Let the late send happen, wherever it falls.
      await new Promise((resolve) => setTimeout(resolve, 0));
      await reporter.drained();
      t.deepEqual(pushed, ['first', 'late'], `late send ${hops} microtasks after the reply${joined === undefined ? '' : ', behind a join gate'}`);
    }
  }
});
