/**
 * The engine's state union (`engine-state.ts`): its moves are logged, the
 * stop in flight is one promise, and a failed start stops what it started.
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import test from 'ava';
import { Engine } from '../../src/engine/engine.ts';
import { captureLogger } from '../capture-logger.ts';
import { FIXTURE_DIR, job, plan, request, startEngine, tempDir } from './helpers.ts';

function engineChanges(lines: Array<Record<string, unknown>>): unknown[][] {
  return lines.filter((line) => line['component'] === 'engine' && line['msg'] === 'state changed' && line['childId'] === undefined).map((line) => [line['from'], line['to']]);
}

test('the engine logs each move, stop() in flight is one promise, and a stopped engine refuses runs', async (t) => {
  const { logger, lines } = captureLogger();
  const engine = await startEngine(t, { logger });
  t.is(engine.state, 'running');
  t.is(engine.stats().state, 'running');
  const stopping = engine.stop();
  t.is(engine.state, 'stopping');
  t.is(engine.stop(), stopping, 'a second stop() returns the stop in flight');
  await stopping;
  t.is(engine.state, 'stopped');
  await engine.stop();
  engine.preload(['@openfn/language-lanesfixture@1.0.0']);
  const after = await engine.execute(request(plan([job('a', 'fn(s => s)')])).request);
  t.like(after, { reason: 'kill', errorType: 'ShutdownError' });
  await new Promise((resolve) => setImmediate(resolve));
  t.deepEqual(engineChanges(lines), [
    ['created', 'starting'],
    ['starting', 'running'],
    ['running', 'stopping'],
    ['stopping', 'stopped'],
  ]);
});

test('an engine whose start fails goes from starting through stopping to stopped, and create() rejects', async (t) => {
  const { logger, lines } = captureLogger();
  const dir = await tempDir(t);
  // The repo dir is a file: the adaptor repo cannot be made there.
  const repoDir = path.join(dir, 'not-a-dir');
  await writeFile(repoDir, '');
  await t.throwsAsync(Engine.create({ poolSize: 1, runMemoryLimitMb: 128, logger, repoDir, localAdaptors: { '@openfn/language-lanesfixture': FIXTURE_DIR } }));
  await new Promise((resolve) => setImmediate(resolve));
  t.deepEqual(engineChanges(lines), [
    ['created', 'starting'],
    ['starting', 'stopping'],
    ['stopping', 'stopped'],
  ]);
});
