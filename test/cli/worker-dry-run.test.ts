import test from 'ava';
import { generateKeyPairSync } from 'node:crypto';
import { runLanes } from './helpers.ts';

test('--version prints the package and Node versions', async (t) => {
  const result = await runLanes(['--version']);
  t.is(result.code, 0);
  t.regex(result.stdout, /^lanes \d+\.\d+\.\d+ \(node v2[4-9]\.\d+\.\d+\)/);
});

test('--dry-run prints the lanes, the capacity and the memory ceiling from flags', async (t) => {
  const result = await runLanes(['worker', '--dry-run', '--workloops', 'fast_lane:1 manual>*:4', '-s', 'flag-secret-123']);
  t.is(result.code, 0, result.stderr);
  const config = JSON.parse(result.stdout) as Record<string, unknown>;
  t.deepEqual(config['workloops'], [
    { id: 'fast_lane:1', queues: ['fast_lane'], capacity: 1 },
    { id: 'manual>*:4', queues: ['manual', '*'], capacity: 4 },
  ]);
  t.is(config['capacity'], 5);
  t.is(config['memoryCeilingMb'], 2500);
  t.is(config['secret'], '[redacted]');
  t.false(result.stdout.includes('flag-secret-123'));
  t.false(result.stderr.includes('flag-secret-123'));
});

test('--dry-run reads WORKER_* env variables', async (t) => {
  const result = await runLanes(['worker', '--dry-run'], {
    WORKER_SECRET: 'env-secret-456',
    WORKER_CAPACITY: '3',
    WORKER_MAX_RUN_MEMORY_MB: '200',
    WORKER_LIGHTNING_SERVICE_URL: 'wss://lightning.example/worker',
  });
  t.is(result.code, 0, result.stderr);
  const config = JSON.parse(result.stdout) as Record<string, unknown>;
  t.deepEqual(config['workloops'], [{ id: 'manual>*:3', queues: ['manual', '*'], capacity: 3 }]);
  t.is(config['memoryCeilingMb'], 600);
  t.is(config['lightningUrl'], 'wss://lightning.example/worker');
  t.false(result.stdout.includes('env-secret-456'));
});

test('--dry-run prints how --max-memory splits across the worker, its children and the lanes', async (t) => {
  const result = await runLanes(['worker', '--dry-run', '--workloops', 'fast_lane:1@256 manual>*:4', '--max-memory', '3000', '--run-memory', '400', '-s', 'x']);
  t.is(result.code, 0, result.stderr);
  const config = JSON.parse(result.stdout) as { maxMemoryMb: number; memoryCeilingMb: number; memory: Record<string, unknown> };
  t.is(config.maxMemoryMb, 3000);
  t.is(config.memoryCeilingMb, 3000);
  // 3000 − worker 160 − 6 children × 160 − fast lane 256 = 1624 for the manual lane.
  t.like(config.memory, { bounded: true, ceilingMb: 3000, workerMb: 160, childMb: 160, children: 6, overheadMb: 1120, largestRunMb: 1624 });
  t.deepEqual(config.memory['lanes'], [
    { lane: 'fast_lane:1@256', memoryMb: 256, defaultRunMb: 256, largestRunMb: 256 },
    { lane: 'manual>*:4', memoryMb: 1624, defaultRunMb: 400, largestRunMb: 1624 },
  ]);
});

test('--dry-run prints lane warnings on stderr and still succeeds', async (t) => {
  const result = await runLanes(['worker', '--dry-run', '--workloops', 'a>a:1', '-s', 'x']);
  t.is(result.code, 0);
  t.regex(result.stderr, /warning: lane "a>a:1" names queue "a" more than once/);
});

const badInputs: Array<[string, string[], Record<string, string>, RegExp]> = [
  ['workloops and capacity together', ['--workloops', 'a:1', '--capacity', '2'], {}, /--workloops.*cannot be combined with --capacity/],
  ['flag and env mixed', ['--capacity', '2'], { WORKER_WORKLOOPS: 'a:1' }, /env WORKER_WORKLOOPS.*flag --capacity "2"/],
  ['a bad workloops string', ['--workloops', 'a:1.5'], {}, /--workloops\/WORKER_WORKLOOPS \(flag --workloops\): "a:1.5"/],
  ['a non-numeric memory', [], { WORKER_MAX_RUN_MEMORY_MB: 'big' }, /WORKER_MAX_RUN_MEMORY_MB \(env WORKER_MAX_RUN_MEMORY_MB\): "big"/],
  ['a negative timeout', ['--max-run-duration-seconds', '-1'], {}, /--max-run-duration-seconds.*"-1" must be a positive number/],
  ['an unknown log level', ['--log', 'chatty'], {}, /--log\/WORKER_LOG_LEVEL \(flag --log\): "chatty"/],
  ['a malformed backoff', [], { WORKER_BACKOFF: '5' }, /WORKER_BACKOFF \(env WORKER_BACKOFF\): "5" must be MIN\/MAX/],
  ['an unknown flag', ['--nope'], {}, /Unknown argument: nope/],
  [
    'a ceiling whose lanes cannot each fit one run',
    ['--workloops', 'fast_lane:1 manual>*:4', '--max-memory', '2048'],
    {},
    /--max-memory\/WORKER_MAX_MEMORY_MB \(flag --max-memory\): "2048" --max-memory 2048 MB gives lane "fast_lane:1" 185 MB, less than one run of --run-memory 500 MB/,
  ],
  ['lanes asking for more than the ceiling', [], { WORKER_WORKLOOPS: 'a:1@4000', WORKER_MAX_MEMORY_MB: '1000' }, /env WORKER_MAX_MEMORY_MB\): "1000" --max-memory 1000 MB leaves 520 MB for runs .* the lanes ask for 4000 MB/],
];

for (const [name, args, env, pattern] of badInputs) {
  test(`bad configuration exits 2 with one line: ${name}`, async (t) => {
    const result = await runLanes(['worker', '--dry-run', '-s', 'cli-secret-789', ...args], env);
    t.is(result.code, 2);
    t.is(result.stdout, '');
    const lines = result.stderr.trimEnd().split('\n');
    t.is(lines.length, 1, result.stderr);
    t.regex(lines[0] ?? '', pattern);
    t.false(result.stderr.includes('cli-secret-789'));
    t.false(result.stderr.includes('    at '));
  });
}

test('a missing secret is a configuration error', async (t) => {
  const result = await runLanes(['worker', '--dry-run']);
  t.is(result.code, 2);
  t.regex(result.stderr, /--secret\/WORKER_SECRET.*required/);
});

test('--help lists every option with its env variable and default', async (t) => {
  const result = await runLanes(['worker', '--help']);
  t.is(result.code, 0);
  for (const fragment of ['--workloops', 'WORKER_WORKLOOPS', '--run-memory', 'WORKER_MAX_RUN_MEMORY_MB', 'default 500', '--dry-run', 'WORKER_BACKOFF', 'default 1/10']) {
    t.true(result.stdout.replace(/\s+/g, ' ').includes(fragment), fragment);
  }
});

test('a leading -- (as pnpm and some npm setups pass it) is not an argument: the command runs', async (t) => {
  const result = await runLanes(['--', 'worker', '--dry-run', '-s', 'dash-dash-secret']);
  t.is(result.code, 0, result.stderr);
  t.is((JSON.parse(result.stdout) as { capacity: number }).capacity, 5);
});

test('lanes with no command prints the commands on stderr and exits 2', async (t) => {
  const result = await runLanes([]);
  t.is(result.code, 2);
  t.is(result.stdout, '');
  for (const command of ['worker', 'server', 'dev', 'submit']) t.regex(result.stderr, new RegExp(`lanes ${command}\\b`));
});

test('a PEM passed as its own argument after --lightning-public-key is that option’s value', async (t) => {
  const { publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const pem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
  // As `--lightning-public-key "$(cat key.pem)"` reaches us: the PEM, dashes first, as the next argument.
  const result = await runLanes(['worker', '--dry-run', '-s', 'x', '--lightning-public-key', pem.trim()]);
  t.is(result.code, 0, result.stderr);
  const config = JSON.parse(result.stdout) as Record<string, unknown>;
  t.is(config['lightningPublicKey'], '[redacted]', 'the key was read, not dropped');
  t.false(result.stdout.includes('BEGIN PUBLIC KEY'));
  const without = JSON.parse((await runLanes(['worker', '--dry-run', '-s', 'x'])).stdout) as Record<string, unknown>;
  t.is(without['lightningPublicKey'], null);
});
