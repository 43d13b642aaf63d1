import test from 'ava';
import pino from 'pino';
import { InvalidTransitionError, StateMachine } from '../src/state-machine.ts';
import { captureLogger } from './capture-logger.ts';

type DoorState = { kind: 'shut' } | { kind: 'opening'; since: number } | { kind: 'open'; visitor: string } | { kind: 'gone' };

function door(logger: pino.Logger) {
  return new StateMachine<DoorState>({
    name: 'door',
    initial: { kind: 'shut' },
    logger,
    transitions: { shut: ['opening', 'gone'], opening: ['open', 'shut'], open: ['shut'], gone: [] },
  });
}

test('moves the table allows change the state, and each change is logged with from and to', async (t) => {
  const { logger, lines } = captureLogger();
  const machine = door(logger);
  t.is(machine.kind, 'shut');
  machine.to({ kind: 'opening', since: 1 });
  machine.to({ kind: 'open', visitor: 'ann' });
  machine.to({ kind: 'shut' });
  t.is(machine.kind, 'shut');
  await new Promise((resolve) => setImmediate(resolve));
  t.deepEqual(
    lines.map((line) => [line['msg'], line['from'], line['to'], line['level']]),
    [
      ['state changed', 'shut', 'opening', 20],
      ['state changed', 'opening', 'open', 20],
      ['state changed', 'open', 'shut', 20],
    ],
  );
});

test('a move the table does not allow throws InvalidTransitionError and leaves the state as it was', (t) => {
  const machine = door(pino({ level: 'silent' }));
  const error = t.throws(() => machine.to({ kind: 'open', visitor: 'bob' }), { instanceOf: InvalidTransitionError });
  t.is(error?.message, 'door: invalid transition shut → open');
  t.is(error?.code, 'INVALID_TRANSITION');
  t.deepEqual([error?.machine, error?.from, error?.to], ['door', 'shut', 'open']);
  t.is(machine.kind, 'shut');
  machine.to({ kind: 'gone' });
  t.false(machine.can('shut'));
  t.throws(() => machine.to({ kind: 'shut' }), { message: 'door: invalid transition gone → shut' });
});

test("a state's data travels with it: when() gives the current variant, typed, or undefined", (t) => {
  const machine = door(pino({ level: 'silent' }));
  t.is(machine.when('open'), undefined);
  machine.to({ kind: 'opening', since: 7 });
  t.is(machine.when('opening')?.since, 7);
  t.true(machine.can('open'));
  machine.to({ kind: 'open', visitor: 'ann' });
  t.is(machine.when('open')?.visitor, 'ann');
  t.is(machine.when('opening'), undefined, 'the data of a state that was left is gone with it');
  t.deepEqual(machine.current, { kind: 'open', visitor: 'ann' });
});

test('a move to the same kind replaces the data, only when the table lists it, and is not logged as a change', async (t) => {
  const { logger, lines } = captureLogger();
  type Counter = { kind: 'counting'; n: number } | { kind: 'done' };
  const machine = new StateMachine<Counter>({
    name: 'counter',
    initial: { kind: 'counting', n: 0 },
    logger,
    transitions: { counting: ['counting', 'done'], done: [] },
  });
  machine.to({ kind: 'counting', n: 1 });
  t.is(machine.when('counting')?.n, 1);
  machine.to({ kind: 'done' });
  t.throws(() => machine.to({ kind: 'done' }), { message: 'counter: invalid transition done → done' });
  await new Promise((resolve) => setImmediate(resolve));
  t.deepEqual(
    lines.map((line) => [line['from'], line['to']]),
    [['counting', 'done']],
  );
});
