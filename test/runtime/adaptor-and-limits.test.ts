import test from 'ava';
import { compileAllowList, isAllowed, parseAdaptorSpecifier } from '../../src/runtime/adaptor-specifier.ts';
import { entryFromPackage } from '../../src/runtime/adaptor-repo.ts';
import { limitLogMessage, sizeOutput, TRUNCATION_MARKER } from '../../src/runtime/payload-limits.ts';

test('adaptor specifiers parse name and version', (t) => {
  t.deepEqual(parseAdaptorSpecifier('@openfn/language-common@3.3.4'), { name: '@openfn/language-common', version: '3.3.4' });
  t.deepEqual(parseAdaptorSpecifier('@openfn/language-http@latest'), { name: '@openfn/language-http', version: 'latest' });
  t.deepEqual(parseAdaptorSpecifier('@openfn/language-http'), { name: '@openfn/language-http', version: undefined });
  t.is(parseAdaptorSpecifier('@openfn/language-common@1; rm -rf /'), undefined);
  t.is(parseAdaptorSpecifier('../evil'), undefined);
});

test('the allow-list matches wildcards and regexps', (t) => {
  const list = compileAllowList(['@openfn/language-*', /^@acme\/adaptor-(a|b)$/]);
  t.true(isAllowed('@openfn/language-common', list));
  t.false(isAllowed('@openfn/languagex', list));
  t.false(isAllowed('left-pad', list));
  t.true(isAllowed('@acme/adaptor-b', list));
  t.false(isAllowed('@acme/adaptor-c', list));
});

test('entry points follow exports, module, main', (t) => {
  t.is(entryFromPackage({ exports: { '.': { import: { types: './x.d.ts', default: './dist/index.js' }, require: './dist/index.cjs' } } }), './dist/index.js');
  t.is(entryFromPackage({ exports: './e.js', main: 'm.js' }), './e.js');
  t.is(entryFromPackage({ module: 'mod.js', main: 'm.js' }), 'mod.js');
  t.is(entryFromPackage({}), 'index.js');
});

test('outputs over the payload limit are dropped', (t) => {
  t.deepEqual(sizeOutput({ a: 1 }, 1), { json: '{"a":1}', tooLarge: false, bytes: 7 });
  const big = sizeOutput({ a: 'x'.repeat(2000) }, 0.001);
  t.true(big.tooLarge);
  t.is(big.json, null);
});

test('log lines over the limit are truncated with a marker', (t) => {
  t.deepEqual(limitLogMessage(['short', 1], 0.001), ['short', 1]);
  const out = limitLogMessage([{ blob: 'x'.repeat(5000) }], 0.001);
  t.is(out.length, 1);
  t.true(String(out[0]).includes(TRUNCATION_MARKER));
  t.true(String(out[0]).length < 1100);
});
