/** runtime/bundle.ts: one ES module out of a module graph, written so readers never see half a file. */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import test from 'ava';
import { BundleError, bundleSource, contentHash, writeBundle } from '../../src/runtime/bundle.ts';
import { packageOf } from '../../src/runtime/bundle-plugins.ts';
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

test('builtinsAsExports: a bundle without a static import, whose builtins work as imported ones do', async (t) => {
  const dir = await tempDir(t, 'lanes-bundle-');
  await writeFile(path.join(dir, 'package.json'), '{ "type": "module" }');
  // A named, a default and a namespace import, as @openfn/runtime writes them.
  await writeFile(
    path.join(dir, 'entry.js'),
    "import { promisify } from 'node:util';\nimport path from 'path';\nimport * as os from 'os';\nexport const kinds = [typeof promisify, path.join('a', 'b'), typeof os.cpus, os.EOL];",
  );
  const plainSource = await bundleSource(path.join(dir, 'entry.js'));
  const lightSource = await bundleSource(path.join(dir, 'entry.js'), { builtinsAsExports: true });
  t.regex(plainSource, /^import .* from "node:util";$/m);
  t.notRegex(lightSource, /^import /m);
  const bundlesDir = path.join(dir, 'bundles');
  const [plain, light] = [path.join(bundlesDir, 'plain.js'), path.join(bundlesDir, 'light.js')];
  await writeBundle(bundlesDir, plain, plainSource);
  await writeBundle(bundlesDir, light, lightSource);
  const lightKinds = ((await import(pathToFileURL(light).href)) as { kinds: unknown[] }).kinds;
  t.deepEqual(lightKinds, ['function', 'a/b', 'function', '\n']);
  t.deepEqual(lightKinds, ((await import(pathToFileURL(plain).href)) as { kinds: unknown[] }).kinds);
});

test('a stub replaces a module only where the named package imports it', async (t) => {
  const dir = await tempDir(t, 'lanes-bundle-');
  for (const name of ['user', 'other', 'heavy']) {
    await mkdir(path.join(dir, 'node_modules', name), { recursive: true });
    await writeFile(path.join(dir, 'node_modules', name, 'package.json'), `{ "name": "${name}", "type": "module", "main": "index.js" }`);
  }
  await writeFile(path.join(dir, 'node_modules', 'heavy', 'index.js'), "export default 'the real heavy';");
  await writeFile(path.join(dir, 'node_modules', 'user', 'index.js'), "import heavy from 'heavy'; export default heavy;");
  await writeFile(path.join(dir, 'node_modules', 'other', 'index.js'), "import heavy from 'heavy'; export default heavy;");
  await writeFile(path.join(dir, 'package.json'), '{ "type": "module" }');
  await writeFile(path.join(dir, 'entry.js'), "import user from 'user'; import other from 'other'; export const seen = [user, other];");
  const source = await bundleSource(path.join(dir, 'entry.js'), { stubs: [{ specifier: 'heavy', importer: 'user', contents: "export default 'stubbed';" }] });
  const file = path.join(dir, 'bundles', 'stubbed.js');
  await writeBundle(path.join(dir, 'bundles'), file, source);
  const loaded = (await import(pathToFileURL(file).href)) as { seen: string[] };
  t.deepEqual(loaded.seen, ['stubbed', 'the real heavy']);
});

test('packageOf names the innermost package of a path, scoped or not', (t) => {
  t.is(packageOf('/a/node_modules/@openfn/logger/dist/index.js'), '@openfn/logger');
  t.is(packageOf('/a/node_modules/@openfn/logger/node_modules/figures/index.js'), 'figures');
  t.is(packageOf('/a/node_modules/chalk/source/index.js'), 'chalk');
  t.is(packageOf('/a/src/runtime/compile.ts'), undefined);
});
