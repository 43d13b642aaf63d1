/** Resolves true when `work()` settles within `timeoutMs`, false on timeout or when `signal` aborts first. */
export async function waitUntil(work: () => Promise<void>, timeoutMs: number, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return false;
  let timer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  try {
    return await Promise.race([
      work().then(() => true),
      new Promise<boolean>((resolve) => {
        if (Number.isFinite(timeoutMs)) timer = setTimeout(() => resolve(false), timeoutMs);
        onAbort = () => resolve(false);
        signal.addEventListener('abort', onAbort, { once: true });
      }),
    ]);
  } finally {
    clearTimeout(timer);
    if (onAbort !== undefined) signal.removeEventListener('abort', onAbort);
  }
}
