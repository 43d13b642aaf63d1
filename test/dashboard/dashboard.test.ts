/**
 * The dashboard in a real browser (Debian's Chromium through playwright-core)
 * against a real server and a real worker whose lanes claim over the real
 * protocol; job code is the typed FakeExecutor, so a test decides when a run
 * ends. What a person does: watch a slot fill and empty, open a run and read
 * its logs, cancel a run, suspend and resume a queue, retry a dead letter,
 * page through runs.
 */
import test from 'ava';
import type { Browser } from 'playwright-core';
import type { LanesServer } from '../../src/server/index.ts';
import { api, deadLetterRun, simplePlan, startServer, submitRun, TEST_API_TOKEN, waitFor } from '../server/helpers.ts';
import { FakeExecutor, startWorker, testConfig } from '../worker/helpers.ts';
import { launchChromium, openPage, signedIn } from './browser.ts';

let browser: Browser | undefined;

test.before(async () => {
  browser = await launchChromium();
});

test.after.always(async () => {
  await browser?.close();
});

function chromiumOf(): Browser {
  if (browser === undefined) throw new Error('Chromium did not start');
  return browser;
}

async function runState(server: LanesServer, id: string): Promise<string> {
  return (await api<{ state: string }>(server, 'GET', `/api/runs/${id}`)).body.state;
}

test.serial('sign in: the form refuses a wrong token, keeps the right one for the tab, and the link signs in without leaving the token in the address', async (t) => {
  const server = await startServer(t);
  const page = await openPage(t, chromiumOf(), /status of 401/);
  await page.goto(server.url);
  const field = page.getByLabel('API token');
  await field.waitFor();
  t.is(await page.locator('.status').innerText(), 'signed out');
  await field.fill('not-the-token');
  await page.keyboard.press('Enter');
  await page.getByRole('alert').filter({ hasText: 'The server refused this token.' }).waitFor();

  await page.getByLabel('API token').fill(TEST_API_TOKEN);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('.status-live').waitFor();
  await page.getByRole('heading', { name: 'Lanes now' }).waitFor();
  // A reload keeps the tab signed in (sessionStorage); signing out forgets the token.
  await page.reload();
  await page.locator('.status-live').waitFor();
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByLabel('API token').waitFor();
  await page.reload();
  await page.getByLabel('API token').waitFor();

  const other = await openPage(t, chromiumOf());
  await other.goto(`${server.url}/#token=${encodeURIComponent(TEST_API_TOKEN)}`);
  await other.locator('.status-live').waitFor();
  t.false(other.url().includes(TEST_API_TOKEN));
  t.regex(other.url(), /#\/$/);
  // Nor in the history: Back leaves the page rather than returning to the address with the token.
  await other.goBack();
  t.false(other.url().includes(TEST_API_TOKEN));
});

test.serial('a run fills a slot of the fast lane and leaves it; its bar lands on that lane of the timeline', async (t) => {
  const server = await startServer(t);
  const executor = new FakeExecutor();
  // A strict `manual` lane: the run can only go to the fast lane (a `*` lane could take it too).
  await startWorker(t, { executor, config: testConfig({ lightningUrl: server.workerUrl, workloopsText: 'fast_lane:1 manual:2' }) });
  const page = await openPage(t, chromiumOf());
  await signedIn(page, server.url, TEST_API_TOKEN);
  const fastLane = page.locator('.lane[data-lane="fast_lane"]');
  await fastLane.waitFor();
  t.is(await fastLane.locator('.slot-free').count(), 1);
  t.is(await page.locator('.lane[data-lane="manual"] .slot-free').count(), 2);

  const runId = await submitRun(server, { queue: 'fast_lane', plan: simplePlan('hold') });
  const slot = fastLane.locator(`.slot-busy[data-run="${runId}"]`);
  await slot.waitFor({ timeout: 10_000 });
  t.regex(await slot.innerText(), /fast_lane/);
  t.is(await fastLane.locator('.slot-free').count(), 0);
  t.regex(await fastLane.locator('.lane-use').innerText(), /1\/1 busy/);

  await waitFor(() => executor.heldRunIds.includes(runId), { message: 'the run to be held by the worker' });
  executor.release(runId);
  await slot.waitFor({ state: 'detached', timeout: 10_000 });
  t.is(await fastLane.locator('.slot-free').count(), 1);
  const bar = page.locator(`.tl-row[data-lane="fast_lane"] .bar.state-success[href="#/runs/${runId}"]`);
  await bar.waitFor({ timeout: 10_000 });
  t.is(await bar.getAttribute('tabindex'), '-1', 'bars stay out of the Tab order');
  t.is(await page.locator(`.tl-row[data-lane="manual"] .bar[href="#/runs/${runId}"]`).count(), 0);
});

test.serial('when lanes carry memory, a slot shows what its run reserved and the lane what it holds of its share', async (t) => {
  const server = await startServer(t);
  const executor = new FakeExecutor();
  await startWorker(t, { executor, config: testConfig({ lightningUrl: server.workerUrl, workloopsText: 'fast_lane:1@256 manual:2', maxMemoryMb: 2000 }) });
  const page = await openPage(t, chromiumOf());
  await signedIn(page, server.url, TEST_API_TOKEN);
  await page.locator('.worker-meta', { hasText: 'memory ceiling 2000 MB' }).waitFor();
  const manual = page.locator('.lane[data-lane="manual"]');
  await manual.locator('.lane-memory', { hasText: /^0 of \d+ MB reserved$/ }).waitFor();
  t.is(await page.locator('.lane[data-lane="fast_lane"] .lane-memory').innerText(), '0 of 256 MB reserved');

  const runId = await submitRun(server, { queue: 'manual', plan: { ...simplePlan('hold'), options: { run_memory_limit_mb: 300 } } });
  const slot = manual.locator(`.slot-busy[data-run="${runId}"]`);
  await slot.waitFor({ timeout: 10_000 });
  t.is(await slot.locator('.slot-memory').innerText(), '300 MB');
  t.regex(await manual.locator('.lane-memory').innerText(), /^300 of \d+ MB reserved$/);
  await waitFor(() => executor.heldRunIds.includes(runId), { message: 'the run to be held by the worker' });
  executor.release(runId);
  await slot.waitFor({ state: 'detached', timeout: 10_000 });
  t.regex(await manual.locator('.lane-memory').innerText(), /^0 of \d+ MB reserved$/);
});

test.serial('open a run from the list, read its logs and timings, then cancel another run in flight', async (t) => {
  const server = await startServer(t);
  const executor = new FakeExecutor();
  await startWorker(t, { executor, config: testConfig({ lightningUrl: server.workerUrl, workloopsText: 'manual>*:2' }) });
  const doneId = await submitRun(server, { queue: 'manual' });
  await waitFor(async () => (await runState(server, doneId)) === 'success', { message: 'the first run to succeed' });
  const page = await openPage(t, chromiumOf());
  await signedIn(page, server.url, TEST_API_TOKEN, `#/runs`);
  await page.locator(`tr[data-run="${doneId}"] a`).click();
  await page.locator('#run-state', { hasText: 'success' }).waitFor();
  const logs = page.locator('.logs');
  await logs.waitFor();
  t.regex(await logs.innerText(), /running job-1/);
  t.regex(await logs.innerText(), /second line/);
  const timings = await page.locator('.timings').innerText();
  for (const label of ['Submitted', 'Claimed', 'Started', 'Ended']) t.regex(timings, new RegExp(label));
  t.true(await page.getByRole('button', { name: 'Cancel run' }).isDisabled());

  const heldId = await submitRun(server, { queue: 'manual', plan: simplePlan('hold') });
  await waitFor(() => executor.heldRunIds.includes(heldId), { message: 'the second run to be running' });
  await page.goto(`${server.url}/#/runs/${heldId}`);
  await page.locator('#run-state', { hasText: 'started' }).waitFor();
  await page.getByRole('button', { name: 'Cancel run' }).click();
  await page.locator('#run-state', { hasText: 'cancelled' }).waitFor({ timeout: 10_000 });
  t.is(await runState(server, heldId), 'cancelled');
});

test.serial('suspend a queue from the keyboard: its runs wait; resume it and they run', async (t) => {
  const server = await startServer(t);
  const executor = new FakeExecutor();
  await startWorker(t, { executor, config: testConfig({ lightningUrl: server.workerUrl, workloopsText: 'manual>*:1' }) });
  await submitRun(server, { queue: 'manual' });
  const page = await openPage(t, chromiumOf());
  await signedIn(page, server.url, TEST_API_TOKEN, `#/queues`);
  const suspend = page.getByRole('button', { name: 'Suspend queue manual' });
  await suspend.waitFor();
  await suspend.focus();
  await page.keyboard.press('Enter');
  await page.locator('tr[data-queue="manual"] .badge-suspended').waitFor({ timeout: 10_000 });
  const queues = (await api<{ queues: Array<{ name: string; suspended: boolean }> }>(server, 'GET', '/api/queues')).body.queues;
  t.true(queues.find((queue) => queue.name === 'manual')?.suspended);
  // Focus stays on the queue's button through the live re-render, now offering to resume.
  const resume = page.getByRole('button', { name: 'Resume queue manual' });
  await resume.waitFor();
  t.is(await page.locator(':focus').getAttribute('aria-label'), 'Resume queue manual');

  const waiting = await submitRun(server, { queue: 'manual' });
  await page.locator('tr[data-queue="manual"] td.num').first().filter({ hasText: '1' }).waitFor({ timeout: 10_000 });
  t.is(await runState(server, waiting), 'available');
  await page.keyboard.press('Enter');
  await page.locator('tr[data-queue="manual"] .badge-active').waitFor({ timeout: 10_000 });
  t.is(await waitFor(async () => ((await runState(server, waiting)) === 'success' ? 'success' : null), { message: 'the waiting run to run once resumed', timeoutMs: 10_000 }), 'success');
});

test.serial('retry a dead letter from its page', async (t) => {
  const server = await startServer(t);
  const { runId } = await deadLetterRun(t, server);
  const page = await openPage(t, chromiumOf());
  await signedIn(page, server.url, TEST_API_TOKEN, `#/runs?state=crashed`);
  await page.locator(`tr[data-run="${runId}"] .badge-dead`).waitFor();
  await page.locator(`tr[data-run="${runId}"] a`).click();
  await page.getByRole('button', { name: 'Retry dead letter' }).click();
  await page.locator('#run-state', { hasText: 'available' }).waitFor({ timeout: 10_000 });
  t.is(await page.getByRole('button', { name: 'Retry dead letter' }).count(), 0);
  t.is(await runState(server, runId), 'available');
});

test.serial('a live redraw keeps a filter picked but not yet applied', async (t) => {
  const server = await startServer(t);
  const firstId = await submitRun(server, { queue: 'manual' });
  await submitRun(server, { queue: 'other' });
  const page = await openPage(t, chromiumOf());
  await signedIn(page, server.url, TEST_API_TOKEN, `#/runs`);
  await page.locator(`tr[data-run="${firstId}"]`).waitFor();
  await page.getByLabel('Queue').selectOption('manual');
  // A new run changes the server's picture: the page redraws the list (and its form) with it.
  const laterId = await submitRun(server, { queue: 'other' });
  await page.locator(`tr[data-run="${laterId}"]`).waitFor();
  t.is(await page.getByLabel('Queue').inputValue(), 'manual');
  t.false(page.url().includes('queue=manual'), 'nothing was applied yet');
});

test.serial('runs filter by queue and page back and forth, newest first', async (t) => {
  const server = await startServer(t);
  const ids: string[] = [];
  for (let index = 0; index < 27; index += 1) ids.push(await submitRun(server, { queue: 'manual' }));
  const otherId = await submitRun(server, { queue: 'other' });
  const page = await openPage(t, chromiumOf());
  await signedIn(page, server.url, TEST_API_TOKEN, `#/runs`);
  await page.locator(`tr[data-run="${otherId}"]`).waitFor();
  await page.getByLabel('Queue').selectOption('manual');
  await page.getByRole('button', { name: 'Apply' }).click();
  await page.waitForURL(/queue=manual/);
  await page.locator(`tr[data-run="${otherId}"]`).waitFor({ state: 'detached' });
  await page.locator(`tr[data-run="${ids[26]}"]`).waitFor();
  // The page redraws when a read lands: compare once the rows settle on what is expected, or show what they were.
  const rows = () => page.locator('tbody tr').evaluateAll((found) => found.map((row) => row.getAttribute('data-run')));
  const settle = async (expected: Array<string | undefined>) => {
    await waitFor(async () => JSON.stringify(await rows()) === JSON.stringify(expected), { timeoutMs: 10_000, intervalMs: 100 }).catch(() => undefined);
    return rows();
  };
  t.deepEqual(await settle(ids.slice(2).reverse()), ids.slice(2).reverse());
  await page.getByRole('button', { name: 'Older →' }).click();
  await page.locator(`tr[data-run="${ids[0]}"]`).waitFor();
  t.deepEqual(await settle([ids[1], ids[0]]), [ids[1], ids[0]]);
  t.true(await page.getByRole('button', { name: 'Older →' }).isDisabled());
  await page.getByRole('button', { name: '← Newer' }).click();
  await page.locator(`tr[data-run="${ids[26]}"]`).waitFor();
});
