import test from 'ava';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkImports, importsOf, readSources } from '../../scripts/import-graph.ts';

const src = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'src');

test('src/ has no layer violation and no import cycle', (t) => {
  const sources = readSources(src);
  t.true(sources.size > 50, 'the walk found the source files');
  t.deepEqual(checkImports(sources).map((problem) => problem.message), []);
});

test('protocol/ and errors/ import nothing of ours; runtime/ never imports engine/', (t) => {
  const sources = readSources(src);
  for (const [file, source] of sources) {
    const targets = importsOf(file, source).map((edge) => edge.to.split('/')[0]);
    if (file.startsWith('protocol/') || file.startsWith('errors/')) t.deepEqual(targets.filter((to) => to !== file.split('/')[0]), [], file);
    if (file.startsWith('runtime/')) t.false(targets.includes('engine'), file);
  }
});

test('imports are read from multi-line, type-only, re-export and side-effect statements', (t) => {
  const source = [
    "import {",
    "  a,",
    "  b,",
    "} from '../protocol/messages.ts';",
    "import type { C } from './c.ts';",
    "export { d } from '../errors/lanes-error.ts';",
    "export type * from './types.ts';",
    "import './side-effect.ts';",
    "import pino from 'pino';",
    "import packageJson from '../../package.json' with { type: 'json' };",
    "const text = \"import x from './not-an-import.ts'\";",
  ].join('\n');
  t.deepEqual(importsOf('engine/engine.ts', source), [
    { from: 'engine/engine.ts', to: 'protocol/messages.ts', line: 1, typeOnly: false },
    { from: 'engine/engine.ts', to: 'engine/c.ts', line: 5, typeOnly: true },
    { from: 'engine/engine.ts', to: 'errors/lanes-error.ts', line: 6, typeOnly: false },
    { from: 'engine/engine.ts', to: 'engine/types.ts', line: 7, typeOnly: true },
    { from: 'engine/engine.ts', to: 'engine/side-effect.ts', line: 8, typeOnly: false },
  ]);
});

test('an upward import is a layer violation naming the file, the line and what the layer may import', (t) => {
  const problems = checkImports(new Map([
    ['runtime/execute-plan.ts', "import x from './compile.ts';\nimport type { RunEnd } from '../engine/run-ends.ts';\n"],
    ['runtime/compile.ts', ''],
    ['engine/run-ends.ts', ''],
  ]));
  t.deepEqual(problems.map((problem) => problem.message), [
    'src/runtime/execute-plan.ts:2 imports src/engine/run-ends.ts, but runtime may import only protocol, errors, state-machine.ts (see docs/architecture.md)',
  ]);
});

test('the worker and the server never import each other, and protocol/ imports nothing of ours', (t) => {
  const problems = checkImports(new Map([
    ['worker/worker.ts', "import { X } from '../server/lanes-server.ts';\n"],
    ['server/lanes-server.ts', "import { Y } from '../worker/worker.ts';\n"],
    ['protocol/tokens.ts', "import { LanesError } from '../errors/lanes-error.ts';\n"],
    ['errors/lanes-error.ts', ''],
  ]));
  t.deepEqual(problems.filter((problem) => problem.kind === 'layer').map((problem) => problem.kind === 'layer' ? problem.edge.from : ''), [
    'worker/worker.ts',
    'server/lanes-server.ts',
    'protocol/tokens.ts',
  ]);
});

test('a cycle inside one folder is found and reported as a path through it', (t) => {
  const problems = checkImports(new Map([
    ['engine/a.ts', "import { b } from './b.ts';\n"],
    ['engine/b.ts', "import type { C } from './c.ts';\n"],
    ['engine/c.ts', "import { a } from './a.ts';\n"],
    ['engine/d.ts', "import { a } from './a.ts';\n"],
  ]));
  t.deepEqual(problems.map((problem) => problem.message), [
    'import cycle: src/engine/a.ts → src/engine/b.ts → src/engine/c.ts → src/engine/a.ts',
  ]);
});

test('a folder missing from the layer table fails with a message saying where to add it', (t) => {
  const problems = checkImports(new Map([['plugins/x.ts', '']]));
  t.is(problems.length, 1);
  t.regex(problems[0]?.message ?? '', /src\/plugins is not in LAYERS in scripts\/import-graph\.ts/);
});
