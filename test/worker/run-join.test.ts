/**
 * A claimed run's channel join that fails for now is made again until the
 * run is joined (src/worker/run-join.ts): the run, handed to the engine at
 * once under `claim_plans`, is reported on the join that succeeds, in its
 * one attempt. The real server on port 0, the real phoenix client, and a
 * frame-aware proxy between them that loses a join or answers it `error`.
 * A final refusal still ends the run (claim-plans.test.ts); a stopping
 * worker does not wait for a join that cannot come.
 */
import test from 'ava';
import type { ExecutionContext } from 'ava';
import type { LanesServer } from '../../src/server/index.ts';
import type { Worker } from '../../src/worker/index.ts';
import { TERMINAL_STATES, getRun } from '../reliability/process-cluster.ts';
import type { PhoenixFrame } from '../reliability/slow-server-proxy.ts';
import { SlowServerProxy } from '../reliability/slow-server-proxy.ts';
import { startServer, submitRun, waitFor } from '../server/helpers.ts';
import { FakeExecutor, startWorker, testConfig } from './helpers.ts';

const isRunJoin = (frame: PhoenixFrame): boolean => frame[2].startsWith('run:') && frame[3] === 'phx_join';

async function setUp(t: ExecutionContext, messageTimeoutMs: number, shutdownTimeoutMs = 10_000): Promise<{ server: LanesServer; proxy: SlowServerProxy; worker: Worker }> {
  // A long lease: a run the worker gave up on would sit `claimed` past the test's deadline, never retried.
  const server = await startServer(t, { leaseMs: 60_000, heartbeatIntervalMs: 1_000 });
  const proxy = await SlowServerProxy.start(t, server.port);
  const worker = await startWorker(t, {
    config: testConfig({ lightningUrl: proxy.workerUrl, workloopsText: 'manual>*:1', messageTimeoutMs, shutdownTimeoutMs }),
    executor: new FakeExecutor(),
  });
  await worker.whenConnected();
  return { server, proxy, worker };
}

async function endsInSuccess(t: ExecutionContext, server: LanesServer, id: string): Promise<void> {
  const view = await waitFor(
    async () => {
      const run = await getRun(server, id);
      return TERMINAL_STATES.includes(run.state) ? run : undefined;
    },
    { timeoutMs: 20_000, intervalMs: 50, message: 'the run to end' },
  );
  t.like(view, { state: 'success', attempts: 1, error_type: null });
}

test('a run join that times out is made again, and the run is reported on the rejoin in its one attempt', async (t) => {
  const { server, proxy } = await setUp(t, 400);
  // The first join never reaches the server: its reply never comes, as from a server too slow or gone.
  let joins = 0;
  proxy.dropToServer = (frame) => isRunJoin(frame) && joins++ === 0;
  const id = await submitRun(server, { queue: 'manual' });
  await endsInSuccess(t, server, id);
  t.is(joins, 2, 'one join lost, one made again');
  t.is(proxy.sentEvents('phx_join', `run:${id}`).length, 2);
});

test('a run join refused for now (the server is shutting down) is made again, and the run is reported', async (t) => {
  const { server, proxy } = await setUp(t, 5_000);
  let refused = 0;
  proxy.rewrite = (frame) => {
    // The first answer to a run's join becomes the refusal a stopping server gives (its store closed).
    if (!frame[2].startsWith('run:') || frame[3] !== 'phx_reply' || frame[1] !== frame[0] || refused > 0) return frame;
    refused += 1;
    return [frame[0], frame[1], frame[2], frame[3], { status: 'error', response: { reason: 'unavailable' } }];
  };
  const id = await submitRun(server, { queue: 'manual' });
  await endsInSuccess(t, server, id);
  t.is(refused, 1);
  t.true(proxy.sentEvents('phx_join', `run:${id}`).length >= 2, 'joined again after the refusal');
});

test('a stopping worker waits for a run join that cannot come one push timeout past its shutdown timeout, not the run\'s lease', async (t) => {
  const { server, proxy, worker } = await setUp(t, 400, 500);
  proxy.dropToServer = isRunJoin;
  const id = await submitRun(server, { queue: 'manual' });
  await waitFor(() => proxy.sentEvents('phx_join', `run:${id}`).length >= 2, { timeoutMs: 20_000, message: 'the join to be made again' });
  // A graceful stop: the run is killed after the 500 ms shutdown timeout, and the stop waits for it to end. Its join
  // can never be answered; a join that waited for its deadline (the run's lease, a minute) would hold the stop that long.
  const stopped = worker.stop().then(() => 'stopped' as const);
  const late = new Promise<'late'>((resolve) => {
    const timer = setTimeout(() => resolve('late'), 20_000);
    t.teardown(() => clearTimeout(timer));
  });
  t.is(await Promise.race([stopped, late]), 'stopped');
  t.is((await getRun(server, id)).state, 'claimed', 'nothing was reported: the lease brings the run back');
});
