/**
 * Two lanes with the same queue chain (`dup:1 dup:1`, legal with a warning)
 * are two lanes everywhere: in the worker's /metrics, in its join and in the
 * server's `GET /api/workers`, not one lane of capacity 1.
 */
import test from 'ava';
import { parseWorkloops } from '../../src/lanes/parse-workloops.ts';
import { api, startServer, waitFor } from '../server/helpers.ts';
import { FakeExecutor, startWorker, testConfig } from './helpers.ts';

test('lanes written twice get their own ids', (t) => {
  const { lanes, warnings } = parseWorkloops('dup:1 dup:1 dup:2 dup:1');
  t.deepEqual(lanes.map((lane) => lane.id), ['dup:1', 'dup:1#2', 'dup:2', 'dup:1#3']);
  t.true(warnings.some((w) => w.includes('same queue chain')));
});

test('two lanes of one chain stay two lanes in /metrics, GET /api/workers and the dashboard', async (t) => {
  const server = await startServer(t);
  const worker = await startWorker(t, { executor: new FakeExecutor(), workerId: 'w-dup', config: testConfig({ lightningUrl: server.workerUrl, workloopsText: 'dup:1 dup:1 other:2' }) });
  const listed = await waitFor(async () => {
    const { body } = await api<{ workers: Array<{ id: string; capacity: number; lanes: unknown }> }>(server, 'GET', '/api/workers');
    return body.workers.find((w) => w.id === 'w-dup');
  });
  t.is(listed.capacity, 4);
  t.deepEqual(listed.lanes, [
    { chain: 'dup', slots: 1 },
    { chain: 'dup', slots: 1 },
    { chain: 'other', slots: 2 },
  ]);
  const { body: dashboard } = await api<{ workers: Array<{ id: string; lanes: Array<{ chain: string; slots: number }> }> }>(server, 'GET', '/api/dashboard');
  t.deepEqual(
    dashboard.workers.find((w) => w.id === 'w-dup')?.lanes.map((lane) => [lane.chain, lane.slots]),
    [
      ['dup', 1],
      ['dup', 1],
      ['other', 2],
    ],
    'the dashboard draws two rows of slots',
  );
  const metrics = await fetch(`http://127.0.0.1:${worker.healthPort}/metrics`).then((r) => r.text());
  const capacities = metrics.split('\n').filter((line) => line.startsWith('lanes_worker_lane_capacity{'));
  t.is(capacities.length, 3, capacities.join('\n'));
  t.true(capacities.some((line) => line.includes('lane="dup:1"') && line.endsWith(' 1')));
  t.true(capacities.some((line) => line.includes('lane="dup:1#2"') && line.endsWith(' 1')));
});
