/**
 * A debug-level pino logger whose lines a test can read back, parsed: for
 * tests of what a component logs (state changes, failures and their fields).
 */
import { Writable } from 'node:stream';
import pino from 'pino';

export function captureLogger(): { logger: pino.Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
      done();
    },
  });
  return { logger: pino({ level: 'debug' }, stream), lines };
}
