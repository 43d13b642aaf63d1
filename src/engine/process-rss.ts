import { readFile } from 'node:fs/promises';

/**
 * Resident set size of a process in bytes, from `/proc/<pid>/status`
 * (`VmRSS`). Covers every thread of the process, which is the point: heap
 * limits do not bound Buffers or native memory, RSS does. Undefined when the
 * process is gone or /proc is not there.
 */
export async function processRssBytes(pid: number): Promise<number | undefined> {
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
    return match?.[1] ? Number(match[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}
