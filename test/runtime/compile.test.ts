import test from 'ava';
import { compileJob } from '../../src/runtime/compile.ts';
import { CompileError } from '../../src/runtime/compile-error.ts';

const common = [{ importFrom: '@openfn/language-common', exports: ['fn', 'each', 'get', 'dataValue', 'field', 'combine'] }];

const cases: Array<{ title: string; source: string; expected: string }> = [
  {
    title: 'one operation becomes the default export and its adaptor function an import',
    source: 'fn(state => ({ ...state, data: { x: 1 } }))',
    expected: 'import { fn } from "@openfn/language-common"; \nexport default [fn(state => ({ ...state, data: { x: 1 } }))];\n',
  },
  {
    title: 'several operations keep their order',
    source: "get('https://example.com');\neach('$.items[*]', fn(s => s));",
    expected: 'import { each, fn, get } from "@openfn/language-common"; \n\nexport default [get(\'https://example.com\'), each(\'$.items[*]\', fn(s => s))];\n',
  },
  {
    title: 'lazy state as an argument becomes an arrow',
    source: 'each($.data.items, fn(s => s))',
    expected: 'import { each, fn } from "@openfn/language-common"; \nexport default [each((state) => state.data.items, fn(s => s))];\n',
  },
  {
    title: 'lazy state inside an expression is parenthesised',
    source: "get($.data.url || 'x')",
    expected: 'import { get } from "@openfn/language-common"; \nexport default [get(((state) => state.data.url) || \'x\')];\n',
  },
  {
    title: 'declarations stay, shadowed names are not imported',
    source: 'const each = 3;\nfn(s => each)',
    expected: 'import { fn } from "@openfn/language-common"; const each = 3;\n\nexport default [fn(s => each)];\n',
  },
  {
    title: 'locals inside functions shadow adaptor names',
    source: 'fn(function (state) { const get = 1; return get })',
    expected: 'import { fn } from "@openfn/language-common"; \nexport default [fn(function (state) { const get = 1; return get })];\n',
  },
  {
    title: 'default values in patterns are references',
    source: 'fn(({ data: { v = dataValue } }) => v)',
    expected: 'import { dataValue, fn } from "@openfn/language-common"; \nexport default [fn(({ data: { v = dataValue } }) => v)];\n',
  },
  {
    title: 'property names and globals are not imports',
    source: 'fn(s => ({ get: s.each, n: Math.max(1, 2) }))',
    expected: 'import { fn } from "@openfn/language-common"; \nexport default [fn(s => ({ get: s.each, n: Math.max(1, 2) }))];\n',
  },
  {
    title: 'no operations gives an empty array',
    source: '// nothing yet',
    expected: '// nothing yet\nexport default [];\n',
  },
];

for (const c of cases) {
  test(`compile: ${c.title}`, (t) => {
    t.is(compileJob(c.source, { adaptors: common }).code, c.expected);
  });
}

test('compile: names an adaptor does not export stay free', (t) => {
  const { imports } = compileJob('fn(s => s); notAnAdaptorFn(1)', { adaptors: common });
  t.deepEqual(imports, { '@openfn/language-common': ['fn'] });
});

test('compile: a syntax error is a CompileError with its line', (t) => {
  const error = t.throws(() => compileJob('fn(s => s)\nfn(s => {\n  return s +\n})', { name: 'my job' }), { instanceOf: CompileError });
  t.is(error?.line, 4);
  t.regex(error?.message ?? '', /SyntaxError: .* in job my job/);
  t.is(error?.code, 'COMPILE_ERROR');
});

test('compile: lazy state inside a function is refused with its line', (t) => {
  const error = t.throws(() => compileJob('fn(s => {\n  return $.data\n})'), { instanceOf: CompileError });
  t.is(error?.line, 2);
});

test('compile: the output parses as a module', async (t) => {
  const { code } = compileJob("get($.url); each('$.items[*]', fn(s => s))", { adaptors: common });
  const { parse } = await import('acorn');
  t.notThrows(() => parse(code, { ecmaVersion: 'latest', sourceType: 'module' }));
});
