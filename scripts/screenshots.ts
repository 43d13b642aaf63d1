/**
 * `npm run screenshots`: refreshes the dashboard's pictures in docs/img/ from
 * a real server and a real worker (lanes `fast_lane:1@512 manual>*:4` under
 * `--max-memory 4000`, so lanes carry memory; the real
 * engine and the offline fixture adaptor), driven in Debian's Chromium
 * (`CHROMIUM_PATH`, default /usr/bin/chromium). Slow runs fill the manual
 * lane, quick ones go through the fast lane, one fails and one is cancelled,
 * so the timeline shows what the fast lane is for.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { chromium } from 'playwright-core';
import { resolveWorkerConfig } from '../src/config/worker-config.ts';
import { LanesServer } from '../src/server/index.ts';
import { Worker } from '../src/worker/index.ts';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const OUT = join(ROOT, 'docs', 'img');
const FIXTURE = '@openfn/language-lanesfixture@1.0.0';
const FIXTURE_DIR = join(ROOT, 'test', 'fixtures', 'adaptor');
const SECRET = 'screenshots-secret';
const API_TOKEN = randomBytes(24).toString('hex');

async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
  const res = await fetch(`${server.url}${path}`, {
    method,
    headers: { 'content-type': 'application/json', authorization: `Bearer ${API_TOKEN}` },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
  return (await res.json()) as T;
}

const submit = (body: Record<string, unknown>) => call<{ id: string }>('POST', '/api/runs', body);

function workflow(queue: string, body: string, input: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    queue,
    input: { data: input },
    plan: {
      triggers: [{ id: 'webhook', type: 'webhook' }],
      jobs: [{ id: 'work', name: 'work', adaptor: FIXTURE, body }],
      edges: [{ id: 'webhook->work', source_trigger_id: 'webhook', target_job_id: 'work', condition: 'always' }],
    },
  };
}

const sleepFor = (seconds: number) =>
  `fn(async state => { console.log('working for ${seconds} s'); await new Promise(r => setTimeout(r, ${seconds * 1000})); console.log('done'); return state; })`;

const dir = await mkdtemp(join(tmpdir(), 'lanes-screenshots-'));
// The worker is stopped with runs in flight at the end: its complaints about that are not news here.
const logger = pino({ level: 'fatal' });
const server = await LanesServer.create({ port: 0, dbPath: join(dir, 'lanes.db'), secret: SECRET, apiTokens: [API_TOKEN], logger });
await server.start();
const { config } = resolveWorkerConfig(
  { lightning: server.workerUrl, secret: SECRET, workloops: 'fast_lane:1@512 manual>*:4', port: '0', 'repo-dir': join(dir, 'repo'), name: 'laptop-worker', 'message-timeout': '2', 'shutdown-timeout-seconds': '1', 'max-memory': '4000' },
  {},
);
const worker = await Worker.create({ config, logger, engine: { localAdaptors: { '@openfn/language-lanesfixture': FIXTURE_DIR }, repoDir: join(dir, 'repo') } });
await worker.start();
const browser = await chromium.launch({ executablePath: process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium', args: ['--no-sandbox'] });
try {
  const page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
  // Signed in as npm start's link does it.
  await page.goto(`${server.url}/#token=${API_TOKEN}`);

  // History first: quick runs on the fast lane and elsewhere, one failure, one cancel.
  for (let index = 0; index < 4; index += 1) await submit(workflow('fast_lane', sleepFor(1)));
  await submit(workflow('default', 'fn(state => { throw new Error("the upstream API said no") })'));
  const cancelled = await submit(workflow('manual', sleepFor(30)));
  await new Promise((resolve) => setTimeout(resolve, 2500));
  await call('POST', `/api/runs/${cancelled.id}/cancel`);
  // Now the manual lane fills with slow runs, a queue waits behind it, and the fast lane still takes its runs at once.
  for (let index = 0; index < 6; index += 1) await submit(workflow(index % 2 === 0 ? 'manual' : 'default', sleepFor(40 + index * 5)));
  await new Promise((resolve) => setTimeout(resolve, 6000));
  for (let index = 0; index < 3; index += 1) {
    await submit(workflow('fast_lane', sleepFor(2)));
    await new Promise((resolve) => setTimeout(resolve, 2600));
  }
  const running = await submit(workflow('fast_lane', sleepFor(20)));
  await page.waitForSelector(`.slot-busy[data-run="${running.id}"]`, { timeout: 20_000 });
  await new Promise((resolve) => setTimeout(resolve, 1500));
  await page.screenshot({ path: join(OUT, 'dashboard-lanes.png'), fullPage: true });

  await page.goto(`${server.url}/#/queues`);
  await page.waitForSelector('tr[data-queue="manual"]');
  await page.screenshot({ path: join(OUT, 'dashboard-queues.png') });

  await page.goto(`${server.url}/#/runs`);
  await page.waitForSelector('table.runs');
  await page.screenshot({ path: join(OUT, 'dashboard-runs.png') });

  const failed = (await call<{ runs: Array<{ id: string }> }>('GET', '/api/runs?state=failed')).runs[0];
  await page.goto(`${server.url}/#/runs/${failed?.id ?? running.id}`);
  await page.waitForSelector('.logs');
  await page.screenshot({ path: join(OUT, 'dashboard-run.png'), fullPage: true });
  console.log(`screenshots written to ${OUT}`);
} finally {
  await browser.close();
  await worker.stop({ force: true });
  await server.stop();
  await rm(dir, { recursive: true, force: true });
}
