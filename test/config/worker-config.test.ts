import test from 'ava';
import { resolveWorkerConfig, redactWorkerConfig } from '../../src/config/worker-config.ts';
import { ConfigError } from '../../src/errors/config-error.ts';

const secret = { WORKER_SECRET: 'shh' };

test('defaults: one lane manual>*:5, units resolved to ms and MB', (t) => {
  const { config } = resolveWorkerConfig({}, secret);
  t.deepEqual(config.workloops, [{ id: 'manual>*:5', queues: ['manual', '*'], capacity: 5 }]);
  t.is(config.capacity, 5);
  t.is(config.runMemoryLimitMb, 500);
  t.is(config.memoryCeilingMb, 2500);
  t.is(config.maxRunDurationMs, 300_000);
  t.deepEqual(config.backoff, { minMs: 1000, maxMs: 10_000 });
  t.is(config.messageTimeoutMs, 30_000);
  t.is(config.claimTimeoutMs, 3_600_000);
  t.is(config.lightningUrl, 'ws://localhost:4000/worker');
  t.deepEqual(config.statePropsToRemove, ['configuration', 'response']);
  t.true(config.bundleCode);
  t.is(config.childNice, 10);
  t.true(Object.isFrozen(config));
  t.true(Object.isFrozen(config.workloops[0]));
});

test('flags win over env, env fills the rest', (t) => {
  const { config } = resolveWorkerConfig(
    { 'run-memory': '256', backoff: '0.5/2' },
    { ...secret, WORKER_MAX_RUN_MEMORY_MB: '1024', WORKER_WORKLOOPS: 'fast_lane:1 manual>*:4', WORKER_BATCH_LOGS: 'true' },
  );
  t.is(config.runMemoryLimitMb, 256);
  t.is(config.capacity, 5);
  t.is(config.memoryCeilingMb, 1280);
  t.deepEqual(config.backoff, { minMs: 500, maxMs: 2000 });
  t.true(config.batchLogs);
});

test('--bundle-code false and WORKER_BUNDLE_CODE=false turn bundling off', (t) => {
  t.false(resolveWorkerConfig({ 'bundle-code': false }, secret).config.bundleCode);
  t.false(resolveWorkerConfig({}, { ...secret, WORKER_BUNDLE_CODE: 'false' }).config.bundleCode);
  t.true(resolveWorkerConfig({ 'bundle-code': true }, { ...secret, WORKER_BUNDLE_CODE: 'false' }).config.bundleCode);
});

test('--background-nice defaults to 19 and is never below --child-nice', (t) => {
  t.is(resolveWorkerConfig({}, secret).config.backgroundNice, 19);
  t.is(resolveWorkerConfig({ 'background-nice': '12' }, secret).config.backgroundNice, 12);
  t.is(resolveWorkerConfig({ 'child-nice': '0' }, { ...secret, WORKER_BACKGROUND_NICE: '0' }).config.backgroundNice, 0);
});

test('--capacity N means manual>*:N', (t) => {
  const { config } = resolveWorkerConfig({ capacity: '3' }, secret);
  t.deepEqual(config.workloops.map((lane) => lane.id), ['manual>*:3']);
});

for (const [flags, env, pattern] of [
  [{ workloops: 'a:1' }, { WORKER_CAPACITY: '2' }, /--workloops\/WORKER_WORKLOOPS \(flag --workloops\): "a:1" cannot be combined with --capacity\/WORKER_CAPACITY \(env WORKER_CAPACITY "2"\)/],
  [{ capacity: '2' }, { WORKER_WORKLOOPS: 'a:1' }, /\(env WORKER_WORKLOOPS\): "a:1" cannot be combined with --capacity\/WORKER_CAPACITY \(flag --capacity "2"\)/],
  [{}, { WORKER_WORKLOOPS: 'a:1', WORKER_CAPACITY: '2' }, /env WORKER_WORKLOOPS.*env WORKER_CAPACITY/],
  [{ workloops: 'a:01' }, {}, /--workloops\/WORKER_WORKLOOPS \(flag --workloops\): "a:01" lane "01": capacity/],
  [{ 'run-memory': 'lots' }, {}, /--run-memory\/WORKER_MAX_RUN_MEMORY_MB \(flag --run-memory\): "lots" must be a positive whole number/],
  [{}, { WORKER_MAX_RUN_DURATION_SECONDS: '-5' }, /WORKER_MAX_RUN_DURATION_SECONDS \(env WORKER_MAX_RUN_DURATION_SECONDS\): "-5" must be a positive number/],
  [{ log: 'loud' }, {}, /--log\/WORKER_LOG_LEVEL \(flag --log\): "loud" must be one of/],
  [{ backoff: '10/1' }, {}, /--backoff\/WORKER_BACKOFF \(flag --backoff\): "10\/1" MIN must not be greater than MAX/],
  [{ backoff: 'fast' }, {}, /"fast" must be MIN\/MAX in seconds/],
  [{ lightning: 'http://x' }, {}, /--lightning\/WORKER_LIGHTNING_SERVICE_URL .*must start with ws:\/\//],
  [{ port: '70000' }, {}, /--port\/WORKER_PORT .*"70000" must be a port number/],
  [{ 'child-nice': '20' }, {}, /--child-nice\/WORKER_CHILD_NICE \(flag --child-nice\): "20" must be a nice value from 0 to 19/],
  [{}, { WORKER_CHILD_NICE: '-1' }, /--child-nice\/WORKER_CHILD_NICE \(env WORKER_CHILD_NICE\): "-1" must be a whole number/],
  [{ 'child-nice': '12', 'background-nice': '11' }, {}, /--background-nice\/WORKER_BACKGROUND_NICE \(flag --background-nice\): "11" must be at least --child-nice \(12\)/],
  [{}, { WORKER_BACKGROUND_NICE: '25' }, /--background-nice\/WORKER_BACKGROUND_NICE \(env WORKER_BACKGROUND_NICE\): "25" must be a nice value from 0 to 19/],
  [{}, { WORKER_BUNDLE_CODE: 'nah' }, /--bundle-code\/WORKER_BUNDLE_CODE \(env WORKER_BUNDLE_CODE\): "nah" must be true or false/],
  [{ 'lightning-public-key': 'not-a-key' }, {}, /--lightning-public-key\/WORKER_LIGHTNING_PUBLIC_KEY/],
] as const) {
  test(`bad config names option, source and value: ${JSON.stringify({ ...flags, ...env })}`, (t) => {
    const error = t.throws(() => resolveWorkerConfig(flags, { ...secret, ...env }), { instanceOf: ConfigError });
    t.regex(error?.message ?? '', pattern);
    t.false((error?.message ?? '').includes('\n'));
  });
}

test('the secret is required', (t) => {
  const error = t.throws(() => resolveWorkerConfig({}, {}), { instanceOf: ConfigError });
  t.regex(error?.message ?? '', /--secret\/WORKER_SECRET.*required/);
});

test('an empty env variable counts as unset', (t) => {
  const { config } = resolveWorkerConfig({}, { ...secret, WORKER_WORKLOOPS: '', WORKER_CAPACITY: '2' });
  t.is(config.capacity, 2);
});

test('redaction hides the secret and the public key', (t) => {
  const { config } = resolveWorkerConfig({ 'lightning-public-key': '-----BEGIN PUBLIC KEY-----\nabc\n-----END PUBLIC KEY-----' }, { WORKER_SECRET: 'top-secret-value' });
  const printed = JSON.stringify(redactWorkerConfig(config));
  t.false(printed.includes('top-secret-value'));
  t.false(printed.includes('BEGIN PUBLIC KEY'));
  t.true(printed.includes('[redacted]'));
});

test('--lightning takes several servers, comma-separated or repeated, for failover; a bad one is named', (t) => {
  const listed = resolveWorkerConfig({ lightning: 'ws://a:4000/worker, wss://b/worker' }, secret).config;
  t.deepEqual(listed.lightningUrls, ['ws://a:4000/worker', 'wss://b/worker']);
  t.is(listed.lightningUrl, 'ws://a:4000/worker');
  const repeated = resolveWorkerConfig({ lightning: ['ws://a:4000/worker', 'ws://b:4000/worker', 'ws://a:4000/worker'] }, secret).config;
  t.deepEqual(repeated.lightningUrls, ['ws://a:4000/worker', 'ws://b:4000/worker']);
  const fromEnv = resolveWorkerConfig({}, { ...secret, WORKER_LIGHTNING_SERVICE_URL: 'ws://x/worker,ws://y/worker' }).config;
  t.deepEqual(fromEnv.lightningUrls, ['ws://x/worker', 'ws://y/worker']);
  const error = t.throws(() => resolveWorkerConfig({ lightning: 'ws://a/worker,http://b/worker' }, secret));
  t.regex(error?.message ?? '', /--lightning.*"http:\/\/b\/worker" must start with ws:\/\/ or wss:\/\//);
  t.throws(() => resolveWorkerConfig({ lightning: ' , ' }, secret), { message: /at least one URL/ });
});

test('idle children retire after 30 s by default; 0 keeps every child warm', (t) => {
  t.is(resolveWorkerConfig({}, secret).config.idleChildTimeoutMs, 30_000);
  t.is(resolveWorkerConfig({ 'idle-child-timeout-seconds': '0' }, secret).config.idleChildTimeoutMs, 0);
  t.is(resolveWorkerConfig({}, { ...secret, WORKER_IDLE_CHILD_TIMEOUT_SECONDS: '5' }).config.idleChildTimeoutMs, 5000);
});
