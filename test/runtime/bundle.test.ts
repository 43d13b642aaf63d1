/** runtime/bundle.ts: one ES module out of a module graph, written so readers never see half a file. */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import test from 'ava';
import { BundleError, bundleSource, contentHash, writeBundle } from '../../src/runtime/bundle.ts';
import { tempDir } from '../engine/helpers.ts';

test('a bundle of ES and CommonJS modules imports as one module with the same exports', async (t) => {
  const dir = await tempDir(t, 'lanes-bundle-');
  await mkdir(path.join(dir, 'src', 'node_modules', 'dep'), { recursive: true });
  await writeFile(path.join(dir, 'src', 'node_modules', 'dep', 'package.json'), '{ "name": "dep", "main": "index.js" }');
  // CommonJS that requires a builtin: the bundle's require shim must serve it.
  await writeFile(path.join(dir, 'src', 'node_modules', 'dep', 'index.js'), "const os = require('node:os'); exports.eol = os.EOL; exports.twice = (n) => n * 2;");
  await writeFile(path.join(dir, 'src', 'package.json'), '{ "type": "module" }');
  await writeFile(path.join(dir, 'src', 'entry.js'), "import dep from 'dep';\nexport const answer = dep.twice(21);\nexport const eol = dep.eol;\nexport default 'd';");
  const source = await bundleSource(path.join(dir, 'src', 'entry.js'));
  const bundlesDir = path.join(dir, 'bundles');
  const file = path.join(bundlesDir, 'nested', `entry-${contentHash(source)}.js`);
  await writeBundle(bundlesDir, file, source);
  const loaded = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
  t.deepEqual(Object.keys(loaded).sort(), ['answer', 'default', 'eol']);
  t.is(loaded['answer'], 42);
  t.is(loaded['eol'], '\n');
  t.is(await readFile(file, 'utf8'), source);
});

test('a module esbuild cannot parse is a BundleError naming the file and the problem', async (t) => {
  const dir = await tempDir(t, 'lanes-bundle-');
  const entry = path.join(dir, 'broken.js');
  await writeFile(entry, 'export const x = ;');
  const error = await t.throwsAsync(bundleSource(entry), { instanceOf: BundleError });
  t.true(error?.message.includes(entry), error?.message);
  t.regex(error?.message ?? '', /Unexpected ";"/);
});

test('the content hash names equal sources equally and different ones differently', (t) => {
  t.is(contentHash('a'), contentHash('a'));
  t.not(contentHash('a'), contentHash('b'));
  t.regex(contentHash('a'), /^[0-9a-f]{16}$/);
});
