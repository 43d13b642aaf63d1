/**
 * The periodic task under the lease and retention sweepers (their own tests
 * cover a slow run that is not stacked with the next, and no run after stop):
 * a run that rejects is logged with the task's name and the next period runs
 * again, and `runAtStart` runs once at start() rather than a period later.
 */
import test from 'ava';
import pino from 'pino';
import { PeriodicTask } from '../../src/server/periodic-task.ts';
import { waitFor } from './helpers.ts';
import { captureLogger } from '../capture-logger.ts';

test('a run that rejects is logged with the task name, and the next period runs again', async (t) => {
  const { logger, lines } = captureLogger();
  let calls = 0;
  const task = new PeriodicTask({
    name: 'test sweeper',
    intervalMs: 5,
    run: async () => {
      calls += 1;
      throw new Error('database gone');
    },
    logger,
  });
  t.teardown(() => task.stop());
  task.start();
  t.is(calls, 0, 'no run at start without runAtStart');
  await waitFor(() => calls >= 3 || null, { timeoutMs: 5_000, message: 'runs after failed ones' });
  task.stop();
  t.true(task.stopped);
  const failure = lines.find((line) => line['msg'] === 'periodic task failed');
  t.is(failure?.['task'], 'test sweeper');
  t.is((failure?.['err'] as { message?: string } | undefined)?.message, 'database gone');
});

test('runAtStart runs once at start(), before the first period', (t) => {
  let calls = 0;
  // A period far beyond the test: only the start can have run it.
  const task = new PeriodicTask({
    name: 'test sweeper',
    intervalMs: 60_000,
    runAtStart: true,
    run: () => {
      calls += 1;
      return Promise.resolve();
    },
    logger: pino({ level: 'silent' }),
  });
  t.teardown(() => task.stop());
  task.start();
  task.start();
  t.is(calls, 1);
});
