/**
 * `prepareContexts` (src/runtime/prepared-contexts.ts): a warm thread makes
 * `vm` contexts ahead, and the runtime's `vm.createContext` calls take them.
 * Each is handed out once, carries the globals the caller asked for, keeps
 * code generation from strings off, and only calls shaped exactly like the
 * runtime's take one. This file patches its own `node:vm`, as a run thread
 * does, so it holds nothing else.
 */
import test from 'ava';
import vm from 'node:vm';
import { prepareContexts } from '../../src/runtime/prepared-contexts.ts';

const RUNTIME_OPTIONS = { codeGeneration: { strings: false, wasm: false } };

prepareContexts(2);

test.serial('the runtime-shaped calls take the prepared contexts, once each, then contexts are created as before', (t) => {
  const asked = [{ state: { n: 1 }, who: 'first' }, { console, who: 'second' }, { who: 'third' }];
  const given = asked.map((sandbox) => vm.createContext(sandbox, RUNTIME_OPTIONS));
  t.not(given[0], asked[0], 'a prepared context, not the caller object made a context');
  t.not(given[1], asked[1]);
  t.not(given[0], given[1], 'never the same context twice');
  t.is(given[2], asked[2], 'once they are used up, the caller object is contextified as before');
  for (const [i, context] of given.entries()) {
    t.true(vm.isContext(context));
    t.is(vm.runInContext('who', context), asked[i]?.who, 'code in the context sees the globals it was made with');
  }
  t.is(vm.runInContext('state.n', given[0] as object), 1);
  t.is(vm.runInContext('typeof process', given[0] as object), 'undefined', 'nothing of the thread leaks in');
});

test.serial('a prepared context refuses code generation from strings, as the runtime asked', (t) => {
  // Fresh preparation for this test: the first test used the first batch.
  prepareContexts(1);
  const context = vm.createContext({ marker: 1 }, RUNTIME_OPTIONS);
  t.is(vm.runInContext('marker', context), 1, 'a prepared context');
  t.throws(() => vm.runInContext("eval('1 + 1')", context), { name: 'EvalError' });
  t.throws(() => vm.runInContext("new Function('return 1')()", context), { name: 'EvalError' });
});

test.serial('calls not shaped like the runtime’s are left alone', (t) => {
  prepareContexts(1);
  const plainOptions = { marker: 2 };
  t.is(vm.createContext(plainOptions), plainOptions, 'no options: not a prepared context');
  const other = { marker: 3 };
  t.is(vm.createContext(other, { codeGeneration: { strings: true, wasm: false } }), other, 'other options');
  class Custom {
    marker = 4;
  }
  const custom = new Custom();
  t.is(vm.createContext(custom, RUNTIME_OPTIONS), custom, 'an object that is not plain');
  const already = vm.createContext({ marker: 5 });
  t.is(vm.createContext(already, RUNTIME_OPTIONS), already, 'an object that is already a context');
  const taken = { marker: 6 };
  t.not(vm.createContext(taken, RUNTIME_OPTIONS), taken, 'the prepared context is still there for the runtime');
});
