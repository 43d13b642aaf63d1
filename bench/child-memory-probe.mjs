// Loaded with --import (NODE_OPTIONS) into a pooled child, and so into each of
// its threads, by bench/child-memory.ts: on SIGUSR2 the child's main thread
// asks every thread for its V8 heap figures over a BroadcastChannel and
// writes one line per isolate to stderr. A measuring aid, never loaded by the
// product.
import v8 from 'node:v8';
import { isMainThread, threadId } from 'node:worker_threads';

const channel = new BroadcastChannel('lanes-memory-probe');
channel.unref();

function figures() {
  const heap = v8.getHeapStatistics();
  const spaces = Object.fromEntries(v8.getHeapSpaceStatistics().map((s) => [s.space_name, Math.round(s.physical_space_size / 1024)]));
  const usage = process.memoryUsage();
  return { threadId, physicalKb: Math.round(heap.total_physical_size / 1024), usedKb: Math.round(heap.used_heap_size / 1024), externalKb: Math.round(heap.external_memory / 1024), mallocedKb: Math.round(heap.malloced_memory / 1024), spacesKb: spaces, arrayBuffersKb: Math.round(usage.arrayBuffers / 1024) };
}

if (isMainThread) {
  process.on('SIGUSR2', () => {
    const lines = [figures()];
    channel.onmessage = (event) => {
      if (event.data?.type === 'figures') lines.push(event.data.figures);
    };
    channel.postMessage({ type: 'ask' });
    setTimeout(() => {
      lines.forEach((line, i) => setTimeout(() => process.stderr.write(`LANES_PROBE ${JSON.stringify(line)}\n`), i * 100));
    }, 500);
  });
} else {
  channel.onmessage = (event) => {
    if (event.data?.type === 'ask') channel.postMessage({ type: 'figures', figures: figures() });
  };
}
