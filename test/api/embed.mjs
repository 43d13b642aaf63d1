// An embedding program, written as a user of the package would write it: plain
// JavaScript importing 'lanes' by name. test/api/public-api.test.ts copies it
// into a project whose node_modules/lanes links to this repository, runs it
// with Node 24, and reads the one JSON line it prints.
import { createServer, createWorker, LanesApiClient, parseWorkloops, isTerminalState } from 'lanes';

const [repoDir, fixtureDir] = process.argv.slice(2);
const secret = 'embedder-secret';
const apiToken = 'embedder-api-token-0123456789abcdef';
const server = await createServer({ port: 0, dbPath: ':memory:', secret, apiTokens: [apiToken] });
await server.start();
const { worker, warnings } = await createWorker({
  flags: { lightning: server.workerUrl, secret, workloops: 'fast_lane:1 manual>*:1', port: 0, 'repo-dir': repoDir, 'spare-children': 0 },
  engine: { localAdaptors: { '@openfn/language-lanesfixture': fixtureDir } },
});
await worker.start();
const client = new LanesApiClient(server.url, { apiToken });
const { id } = await client.submitRun({
  queue: 'fast_lane',
  plan: {
    triggers: [{ id: 'trigger', type: 'webhook' }],
    jobs: [{ id: 'job-1', body: 'fn(state => ({ ...state, data: { doubled: state.data.n * 2 } }))', adaptor: '@openfn/language-lanesfixture@1.0.0' }],
    edges: [{ id: 'edge-1', source_trigger_id: 'trigger', target_job_id: 'job-1', condition: 'always' }],
  },
  input: { data: { n: 21 } },
});
const run = await client.waitForRun(id, { pollMs: 50 });
await worker.stop();
await server.stop();
process.stdout.write(`${JSON.stringify({
  state: run.state,
  terminal: isTerminalState(run.state),
  finalState: run.final_state,
  lanes: parseWorkloops('fast_lane:1 manual>*:1').lanes.map((lane) => lane.queues),
  warnings,
  workerState: worker.state,
  serverState: server.state,
})}\n`);
