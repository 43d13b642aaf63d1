/**
 * The engine's bundles (runtime/bundle.ts): run threads load Lanes' thread
 * code and each adaptor from one esbuild bundle, built by the engine into
 * the repo dir; with bundling off, or when a bundle cannot be written, the
 * same code loads file by file and runs the same.
 */
import { execFile } from 'node:child_process';
import { mkdir, readFile, readdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import test from 'ava';
import { decodeCodeCache, codeCachePath } from '../../src/runtime/code-cache.ts';
import { FIXTURE_DIR, job, plan, request, startEngine, tempDir } from './helpers.ts';

// npm links a local adaptor into the repo, and Node loads it by its real path.
const FIXTURE_SOURCE_URL = `file://${path.join(FIXTURE_DIR, 'index.js')}`;
const FIXTURE_BUNDLE = path.join('.lanes-bundles', 'adaptors', '@openfn', 'language-lanesfixture_1.0.0.js');
const CODE_CACHE_WRITER = fileURLToPath(new URL('../../src/runtime/code-cache-writer-main.ts', import.meta.url));

async function whereAmI(t: Parameters<typeof startEngine>[0], options: Parameters<typeof startEngine>[1] = {}) {
  const repoDir = await tempDir(t);
  const engine = await startEngine(t, { ...options, repoDir });
  const outcome = await engine.execute(request(plan([job('j', 'whereAmI();')])).request);
  t.is(outcome.reason, 'success', outcome.errorMessage ?? '');
  const data = (outcome.finalState as { data: { moduleUrl: string; stack: string } }).data;
  return { repoDir, moduleUrl: data.moduleUrl, stack: data.stack };
}

test('threads run from a bundle of the thread code, and adaptors from their own bundle', async (t) => {
  const { repoDir, moduleUrl, stack } = await whereAmI(t);
  t.is(moduleUrl, `file://${path.join(repoDir, FIXTURE_BUNDLE)}`);
  const bundles = await readdir(path.join(repoDir, '.lanes-bundles'));
  const threadBundle = bundles.find((f) => /^run-thread-[0-9a-f]{16}\.js$/.test(f));
  t.truthy(threadBundle, bundles.join(', '));
  // The runtime that called the adaptor is the copy inside the thread bundle.
  t.true(stack.includes(threadBundle as string), stack);
  t.false(stack.includes('node_modules/@openfn/runtime'), stack);
  t.deepEqual(JSON.parse(await readFile(path.join(repoDir, '.lanes-bundles', 'package.json'), 'utf8')), { type: 'module', private: true });
});

test('bundleCode false loads the thread code and the adaptor file by file', async (t) => {
  const { repoDir, moduleUrl, stack } = await whereAmI(t, { bundleCode: false });
  t.is(moduleUrl, FIXTURE_SOURCE_URL);
  t.true(stack.includes('node_modules/@openfn/runtime'), stack);
  await t.throwsAsync(readdir(path.join(repoDir, '.lanes-bundles')), { code: 'ENOENT' });
});

test('an adaptor whose bundle cannot be written loads file by file, and its run succeeds', async (t) => {
  const repoDir = await tempDir(t);
  // A directory where the bundle file should go: the write fails.
  await mkdir(path.join(repoDir, FIXTURE_BUNDLE), { recursive: true });
  const engine = await startEngine(t, { repoDir });
  const outcome = await engine.execute(request(plan([job('j', 'whereAmI();')])).request);
  t.is(outcome.reason, 'success', outcome.errorMessage ?? '');
  const { moduleUrl } = (outcome.finalState as { data: { moduleUrl: string } }).data;
  t.is(moduleUrl, FIXTURE_SOURCE_URL);
});

test('children start from their own bundle, which carries only what a child needs', async (t) => {
  const repoDir = await tempDir(t);
  const engine = await startEngine(t, { repoDir });
  const pid = engine.childPids()[0];
  if (pid === undefined) return t.fail('no child');
  const argv = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0');
  const entry = argv.find((arg) => /child-main/.test(arg)) ?? '';
  // Started from JavaScript: a child started from child-main.ts would load Node's TypeScript stripper and keep it.
  t.regex(entry, /\/\.lanes-bundles\/child-main-[0-9a-f]{16}\.js$/);
  t.true(entry.startsWith(repoDir), entry);
  // The child relays messages: a few KB of code. Wire schemas (reached through protocol/index.ts) would make it
  // hundreds of KB resident in every child; the run thread has no use for them either.
  const childCode = await readFile(entry, 'utf8');
  t.true(childCode.length < 64 * 1024, `child bundle is ${childCode.length} bytes`);
  const bundles = await readdir(path.join(repoDir, '.lanes-bundles'));
  const threadCode = await readFile(path.join(repoDir, '.lanes-bundles', bundles.find((f) => f.startsWith('run-thread-')) ?? 'none'), 'utf8');
  for (const [name, code] of [['child', childCode], ['thread', threadCode]] as const) t.false(/typebox/i.test(code), `the ${name} bundle carries the schema library`);
});

test('the thread bundle leaves out what a run never uses, and threads load it and the adaptor with a code cache', async (t) => {
  const { repoDir } = await whereAmI(t);
  const bundlesDir = path.join(repoDir, '.lanes-bundles');
  const bundles = await readdir(bundlesDir);
  const threadBundle = bundles.find((f) => /^run-thread-[0-9a-f]{16}\.js$/.test(f)) ?? 'none';
  const code = await readFile(path.join(bundlesDir, threadBundle), 'utf8');
  // Stubbed (thread-stubs.ts): the logger's prompt, its colours, the runtime's source maps and npm runner.
  for (const gone of ['node_modules/@inquirer/', 'node_modules/chalk/', 'node_modules/source-map/', 'node_modules/cli-spinners/']) {
    t.false(code.includes(gone), `the thread bundle carries ${gone}`);
  }
  t.false(/getBuiltinModule\("node:child_process"\)/.test(code), 'the thread bundle loads child_process');
  // No static import: thread-boot.ts links it without a loader.
  t.notRegex(code, /^import /m);
  // The compiler is still there: a job without compiled text compiles in the thread.
  t.true(code.includes('node_modules/acorn/'));
  // Written in the background: poll for each, with a deadline.
  for (const bundle of [path.join(bundlesDir, threadBundle), path.join(repoDir, FIXTURE_BUNDLE)]) {
    const deadline = Date.now() + 30_000;
    let cache: Buffer | undefined;
    while (!cache && Date.now() < deadline) {
      cache = await readFile(codeCachePath(bundle)).catch(() => undefined);
      if (!cache) await new Promise((resolve) => setTimeout(resolve, 50));
    }
    if (!cache) return t.fail(`no code cache for ${bundle}`);
    t.truthy(decodeCodeCache(cache, await readFile(bundle)), `no valid code cache for ${bundle}`);
  }
  t.true(bundles.some((f) => /^run-thread-boot-[0-9a-f]{16}\.js$/.test(f)), bundles.join(', '));
});

test('a run thread has no interactive prompt: the logger’s confirm rejects instead of waiting on a terminal', async (t) => {
  const engine = await startEngine(t, { repoDir: await tempDir(t) });
  const body = "(async () => { try { await console.confirm('go on?'); return { asked: 'answered' }; } catch (e) { return { asked: e.message }; } });";
  const outcome = await engine.execute(request(plan([job('j', body, { adaptor: undefined })])).request);
  t.is(outcome.reason, 'success', outcome.errorMessage ?? '');
  t.deepEqual(outcome.finalState, { asked: 'an interactive prompt is not available in a Lanes run thread' });
});

test('a code cache V8 rejects (written under other V8 flags, or by another V8) is not used: the runs succeed as without one', async (t) => {
  const { repoDir } = await whereAmI(t);
  const bundlesDir = path.join(repoDir, '.lanes-bundles');
  const threadBundle = path.join(bundlesDir, (await readdir(bundlesDir)).find((f) => /^run-thread-[0-9a-f]{16}\.js$/.test(f)) ?? 'none');
  const bundles = [threadBundle, path.join(repoDir, FIXTURE_BUNDLE)];
  // The worker's own writer, run as the worker runs it but with a V8 flag that changes V8's flag hash:
  // the caches are whole and made from the same source, and V8 still refuses them.
  await new Promise<void>((resolve, reject) => {
    execFile(process.execPath, ['--no-flush-bytecode', '--experimental-vm-modules', '--disable-warning=ExperimentalWarning', CODE_CACHE_WRITER, ...bundles], { env: {} }, (error, _stdout, stderr) =>
      error ? reject(new Error(stderr)) : resolve(),
    );
  });
  for (const bundle of bundles) t.truthy(decodeCodeCache(await readFile(codeCachePath(bundle)), await readFile(bundle)), `a whole cache for ${bundle}`);
  const engine = await startEngine(t, { repoDir });
  const outcome = await engine.execute(request(plan([job('j', 'whereAmI();')])).request);
  t.is(outcome.reason, 'success', outcome.errorMessage ?? '');
});
