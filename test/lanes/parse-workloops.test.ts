import test from 'ava';
import fc from 'fast-check';
import { formatWorkloops, parseWorkloops } from '../../src/lanes/parse-workloops.ts';
import { WorkloopsError } from '../../src/lanes/workloops-error.ts';

const valid: Array<[string, Array<{ id: string; queues: string[]; capacity: number }>]> = [
  ['fast_lane:1 manual>*:4', [
    { id: 'fast_lane:1', queues: ['fast_lane'], capacity: 1 },
    { id: 'manual>*:4', queues: ['manual', '*'], capacity: 4 },
  ]],
  ['*:5', [{ id: '*:5', queues: ['*'], capacity: 5 }]],
  ['fast_lane>manual>*:1 *:4', [
    { id: 'fast_lane>manual>*:1', queues: ['fast_lane', 'manual', '*'], capacity: 1 },
    { id: '*:4', queues: ['*'], capacity: 4 },
  ]],
  ['a:1\t\tb:2', [
    { id: 'a:1', queues: ['a'], capacity: 1 },
    { id: 'b:2', queues: ['b'], capacity: 2 },
  ]],
  ['  a:1    b:2 \n', [
    { id: 'a:1', queues: ['a'], capacity: 1 },
    { id: 'b:2', queues: ['b'], capacity: 2 },
  ]],
  ['Queue_9:10', [{ id: 'Queue_9:10', queues: ['Queue_9'], capacity: 10 }]],
];

for (const [input, lanes] of valid) {
  test(`parses ${JSON.stringify(input)}`, (t) => {
    const parsed = parseWorkloops(input);
    t.deepEqual(parsed.lanes, lanes);
    t.deepEqual(parsed.warnings, []);
  });
}

const invalid: Array<[string, string, RegExp]> = [
  ['a:01', '01', /leading zeros/],
  ['a:+1', '+1', /without sign/],
  ['a:1.5', '1.5', /whole number/],
  ['a:0', '0', /positive/],
  ['a:-1', '-1', /positive/],
  [':3', ':3', /at least one queue name/],
  ['a>:1', 'a>:1', /must not be empty/],
  ['*>a:1', '*>a:1', /only be the last/],
  ['a-b:1', 'a-b', /letters, digits and "_"/],
  ['a:', 'a:', /needs a capacity/],
  ['a', 'a', /no ":"/],
  ['a:1:2', 'a:1:2', /exactly one ":"/],
  ['', '', /at least one lane/],
  ['   \t ', '   \t ', /at least one lane/],
  ['a:1 b', 'b', /no ":"/],
  ['a:1001', '1001', /at most 1000/],
  ['é:1', 'é', /letters, digits/],
];

for (const [input, token, rule] of invalid) {
  test(`rejects ${JSON.stringify(input)} naming ${JSON.stringify(token)}`, (t) => {
    const error = t.throws(() => parseWorkloops(input), { instanceOf: WorkloopsError });
    t.is(error?.token, token);
    t.regex(error?.rule ?? '', rule);
    t.is(error?.code, 'INVALID_WORKLOOPS');
  });
}

test('a lane of 10,000 characters is rejected quickly and exactly, naming the limit', (t) => {
  const long = t.throws(() => parseWorkloops(`${'q'.repeat(9_998)}:1`), { instanceOf: WorkloopsError });
  t.is(long?.rule, 'a queue name must be at most 64 characters, got 9998');
  const name = 'q'.repeat(64);
  t.is(parseWorkloops(`${name}:1`).lanes[0]?.queues[0], name);
  const error = t.throws(() => parseWorkloops(`${'q>'.repeat(4_999)}-:1`), { instanceOf: WorkloopsError });
  t.is(error?.token, '-');
});

test('repeated names in a lane and repeated chains across lanes are warnings', (t) => {
  const parsed = parseWorkloops('a>a:1 b:1 b:2');
  t.is(parsed.lanes.length, 3);
  t.deepEqual(parsed.warnings, ['lane "a>a:1" names queue "a" more than once', 'two lanes have the same queue chain "b"']);
});

test('property: any string parses to lanes that print back equivalently, or throws WorkloopsError', (t) => {
  const alphabet = fc.constantFrom('a', 'b', 'Z', '_', '0', '1', '9', '*', '>', ':', ' ', '\t', '-', '+', '.', 'é');
  const text = fc.oneof(fc.string(), fc.string({ unit: alphabet, maxLength: 40 }));
  t.notThrows(() => fc.assert(
    fc.property(text, (input) => {
      let lanes;
      try {
        lanes = parseWorkloops(input).lanes;
      } catch (error) {
        return error instanceof WorkloopsError;
      }
      const printed = formatWorkloops(lanes);
      return JSON.stringify(parseWorkloops(printed).lanes) === JSON.stringify(lanes) && lanes.length > 0;
    }),
    { numRuns: 2_000 },
  ));
});

test('property: well-formed lanes always parse back to themselves', (t) => {
  const name = fc.stringMatching(/^[A-Za-z0-9_]{1,12}$/);
  const lane = fc.record({
    names: fc.array(name, { minLength: 1, maxLength: 4 }),
    wildcard: fc.boolean(),
    capacity: fc.integer({ min: 1, max: 1000 }),
  });
  fc.assert(
    fc.property(fc.array(lane, { minLength: 1, maxLength: 5 }), (lanes) => {
      const input = lanes.map((l) => `${[...l.names, ...(l.wildcard ? ['*'] : [])].join('>')}:${l.capacity}`).join(' ');
      const parsed = parseWorkloops(input).lanes;
      t.is(formatWorkloops(parsed), input);
    }),
  );
});

test('a lane may name its memory after "@", in MB', (t) => {
  const { lanes } = parseWorkloops('fast_lane:1@256 manual>*:4');
  t.deepEqual(lanes, [
    { id: 'fast_lane:1@256', queues: ['fast_lane'], capacity: 1, memoryMb: 256 },
    { id: 'manual>*:4', queues: ['manual', '*'], capacity: 4 },
  ]);
  t.is(formatWorkloops(lanes), 'fast_lane:1@256 manual>*:4');
  for (const bad of ['a:1@', 'a:1@0', 'a:1@-5', 'a:1@1.5', 'a:1@012', 'a:1@5@5', 'a:1@2000000']) {
    t.throws(() => parseWorkloops(bad), undefined, bad);
  }
});
