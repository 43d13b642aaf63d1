import { readFileSync } from 'node:fs';

/**
 * Resident set size of a process in bytes, from `/proc/<pid>/status`
 * (`VmRSS`). Covers every thread of the process, which is the point: heap
 * limits do not bound Buffers or native memory, RSS does. Undefined when the
 * process is gone or /proc is not there.
 *
 * Read synchronously: a /proc file is made by the kernel on read and never
 * waits on a disk, and busy children are sampled every 20 ms each, so the
 * asynchronous read's thread-pool round trips and promises were most of the
 * sampler's cost (about 130 µs of CPU per sample against 20 µs, measured).
 */
export function processRssBytes(pid: number): Promise<number | undefined> {
  return Promise.resolve(readRss(pid));
}

function readRss(pid: number): number | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'latin1');
    const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
    return match?.[1] ? Number(match[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}
