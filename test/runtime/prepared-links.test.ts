/**
 * prepared-links.ts: the module job code links for its adaptor is made ahead
 * in each prepared context, handed out once to the job of that context, and
 * made at the run for any other; job code imports nothing but its adaptors.
 * The `vm` module API needs `--experimental-vm-modules`, so the checks run in
 * a child Node with that flag, as a run's thread runs (the probe prints what
 * it saw); the refusal is also checked through the engine, which shows the
 * runtime calls this linker.
 */
import test from 'ava';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { linkedTarget } from '../../src/runtime/adaptor-import.ts';
import { job, plan, request, startEngine } from '../engine/helpers.ts';

const PROBE = fileURLToPath(new URL('../fixtures/prepared-links-probe.ts', import.meta.url));
const ADAPTOR_ENTRY = fileURLToPath(new URL('../fixtures/adaptor/index.js', import.meta.url));

test('a prepared module is handed out once, only to its own context, and keeps the context\'s first module name free', async (t) => {
  const { stdout } = await promisify(execFile)(process.execPath, ['--experimental-vm-modules', '--disable-warning=ExperimentalWarning', PROBE, ADAPTOR_ENTRY]);
  const seen = JSON.parse(stdout) as Record<string, unknown>;
  t.true(seen['firstIsPrepared'], 'the job of a prepared context links the module made ahead for it');
  t.true(seen['bIsPrepared']);
  t.is(seen['firstIdentifier'], 'lanes:adaptor');
  t.is(seen['firstStatus'], 'evaluated', 'linked and evaluated before the run');
  t.true(seen['secondIsAnother'], 'a second link in the same context gets a module made then');
  t.true(seen['bIsAnother'], 'each prepared context has its own');
  t.is(seen['otherStatus'], 'evaluated', 'a context made at the run still links');
  t.true(seen['sameExports'], 'the adaptor\'s exports, every one');
  t.true(seen['sameValues'], 'the adaptor\'s own values');
  // The runtime tells job code's errors from an adaptor's by `vm:module(0)` in the stack.
  t.is(seen['jobIdentifier'], 'vm:module(0)');
  t.is(seen['refused'], 'ImportError: Failed to import module "node:fs": job code can import only its adaptor');
});

test('the linked target follows the runtime: an inner default of a transpiled module, a lone default object, else the namespace', (t) => {
  const inner = { fn: 1 };
  t.is(linkedTarget({ __esModule: true, default: { default: inner } }), inner);
  t.is(linkedTarget({ default: inner }), inner);
  const namespace = { default: inner, fn: 2 };
  t.is(linkedTarget(namespace), namespace);
  const emptyDefault = { default: {} };
  t.is(linkedTarget(emptyDefault), emptyDefault);
});

test('job code that imports anything but its adaptor fails as an adaptor error naming the import', async (t) => {
  const engine = await startEngine(t, { poolSize: 1 });
  for (const specifier of ['node:fs', '/etc/hostname.js']) {
    const outcome = await engine.execute(request(plan([job('a', `import x from ${JSON.stringify(specifier)};\nfn(s => ({ ...s, data: { x: typeof x } }))`)])).request);
    // The runtime's ImportError ends a run as an adaptor that could not be loaded (run-ends.ts).
    t.is(outcome.reason, 'exception', `${specifier}: ${outcome.errorType} ${outcome.errorMessage}`);
    t.is(outcome.errorType, 'AdaptorError');
    t.true(outcome.errorMessage?.includes(`"${specifier}": job code can import only its adaptor`), outcome.errorMessage ?? '');
  }
});
