import test from 'ava';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { SERVER_OPTIONS } from '../../src/config/server-config.ts';
import { WORKER_OPTIONS } from '../../src/config/worker-config.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));
const read = (path: string) => readFileSync(new URL(path, `file://${root}`), 'utf8');

test('.env.example is the one the option tables print', (t) => {
  const printed = execFileSync(process.execPath, ['scripts/print-env-example.ts'], { cwd: root, encoding: 'utf8' });
  t.is(read('.env.example'), printed, 'regenerate with: node scripts/print-env-example.ts > .env.example');
});

test('docs/configuration.md lists every flag and environment variable', (t) => {
  const doc = read('docs/configuration.md');
  for (const spec of [...WORKER_OPTIONS, ...SERVER_OPTIONS]) {
    t.true(doc.includes(`\`--${spec.flag}\``), `--${spec.flag}`);
    if (spec.env) t.true(doc.includes(`\`${spec.env}\``), spec.env);
  }
});
