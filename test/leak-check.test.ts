/**
 * The shared leak check (test/leak-check.ts) fails a test file whose tests all
 * pass but leave a timer, a child process or a listening socket behind, and
 * passes one that closes what it opened. Runs AVA itself on a fixture file.
 */
import test from 'ava';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const AVA_CLI = join(ROOT, 'node_modules', 'ava', 'entrypoints', 'cli.js');

function runFixture(leak: string): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [AVA_CLI, '--config', 'test/fixtures/leaky/ava.config.mjs'],
      { cwd: ROOT, env: { ...process.env, LEAK: leak, CI: '' }, timeout: 90_000 },
      (error, stdout, stderr) => resolve({ code: error ? Number(error.code ?? 1) : 0, output: stdout + stderr }),
    );
  });
}

for (const [leak, kind] of [
  ['timer', 'Timeout ×1'],
  ['child', 'ProcessWrap ×1'],
  ['server', 'TCPServerWrap ×1'],
] as const) {
  test(`a file that leaves a ${leak} behind fails, naming ${kind}`, async (t) => {
    const { code, output } = await runFixture(leak);
    t.not(code, 0, output);
    t.true(output.includes('leaves no child process, socket or timer behind'), output);
    t.true(output.includes(kind), output);
  });
}

test('a file that closes what it opened in t.teardown passes', async (t) => {
  const { code, output } = await runFixture('closed-server');
  t.is(code, 0, output);
  t.regex(output, /1 test passed/);
});
