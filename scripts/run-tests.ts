/**
 * Runs the AVA suite. At a terminal it uses AVA's own reporter; under CI
 * (CI=true, or --junit) it runs AVA with --tap, echoes the TAP to stderr as
 * it arrives, converts it to JUnit XML in reports/junit.xml with tap-xunit,
 * and ends with one "N passed, N failed" line. The exit code is AVA's.
 */
import { spawn } from 'node:child_process';
import { createWriteStream, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
// Neither package exports its CLI path, so point at the installed files.
const avaCli = join(root, 'node_modules', 'ava', 'entrypoints', 'cli.js');
const tapXunitCli = join(root, 'node_modules', 'tap-xunit', 'bin', 'tap-xunit');
const extraArgs = process.argv.slice(2).filter((arg) => arg !== '--junit');
const junit = process.argv.includes('--junit') || (process.env['CI'] ?? '') === 'true';

if (!junit) {
  const ava = spawn(process.execPath, [avaCli, ...extraArgs], { cwd: root, stdio: 'inherit' });
  ava.on('close', (code) => process.exit(code ?? 1));
} else {
  mkdirSync(join(root, 'reports'), { recursive: true });
  const ava = spawn(process.execPath, [avaCli, '--tap', ...extraArgs], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
  const converter = spawn(process.execPath, [tapXunitCli, '--package', 'lanes'], { cwd: root, stdio: ['pipe', 'pipe', 'inherit'] });
  const report = createWriteStream(join(root, 'reports', 'junit.xml'));
  converter.stdout.pipe(report);

  let tap = '';
  ava.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    tap += chunk;
    process.stderr.write(chunk);
    converter.stdin.write(chunk);
  });
  const avaDone = new Promise<number>((resolve) => ava.on('close', (code) => resolve(code ?? 1)));
  const reportDone = new Promise<void>((resolve) => report.on('close', () => resolve()));
  const avaCode = await avaDone;
  converter.stdin.end();
  await reportDone;

  const count = (name: string) => Number(new RegExp(`^# ${name} (\\d+)$`, 'm').exec(tap)?.[1] ?? 0);
  const passed = count('pass');
  const failed = count('fail');
  const skipped = count('skip');
  process.stdout.write(`\n${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}\n`);
  process.stdout.write(`JUnit report: reports/junit.xml\n`);
  process.exit(avaCode !== 0 || failed > 0 ? (avaCode || 1) : passed === 0 ? 1 : 0);
}
