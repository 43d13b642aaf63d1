/**
 * What a command may use of the process, handed down from the entry point so
 * that nothing below the CLI touches `process` itself.
 */
export interface CliContext {
  env: Readonly<Record<string, string | undefined>>;
  cwd: string;
  isTty: boolean;
  /** Writes a line (a newline is added) to stdout / stderr. */
  out(line: string): void;
  err(line: string): void;
  /**
   * Calls `handler` on SIGTERM/SIGINT with the count of signals so far (1 for
   * the first: drain; 2 or more: force).
   */
  onShutdownSignal(handler: (count: number, signal: string) => void): void;
  /** Calls `handler` synchronously when the process exits, however it exits normally. */
  onExit(handler: () => void): void;
}
