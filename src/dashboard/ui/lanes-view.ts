/**
 * "Lanes now": every connected worker, its lanes as rows of slots, each slot
 * empty or holding a run (queue, age, step, and its memory when lanes carry
 * memory), and the worker's last-seen age.
 */
import type { DashboardAttempt, DashboardLane, DashboardSnapshot, DashboardWorker } from '../../protocol/dashboard.ts';
import { formatDuration, h, shortId } from './dom.ts';

function slot(run: DashboardAttempt | undefined, now: number, label: string): HTMLElement {
  if (run === undefined) return h('li', { class: 'slot slot-free', 'aria-label': `${label}: free` }, h('span', { class: 'slot-free-text' }, 'free'));
  const age = formatDuration(now - run.claimed_at);
  return h(
    'li',
    { class: `slot slot-busy state-${run.state}`, 'data-run': run.run_id, 'aria-label': `${label}: run ${shortId(run.run_id)} from ${run.queue}, ${run.state} ${age}` },
    h('a', { href: `#/runs/${run.run_id}`, class: 'slot-run', 'data-key': `slot-${run.run_id}` }, shortId(run.run_id)),
    h('span', { class: 'slot-queue' }, run.queue),
    h('span', { class: 'slot-age' }, age),
    h('span', { class: 'slot-step' }, run.started_at === null ? 'starting' : (run.step ?? 'between steps')),
    run.memory_mb === null ? null : h('span', { class: 'slot-memory' }, `${run.memory_mb} MB`),
  );
}

function lane(worker: DashboardWorker, entry: DashboardLane, now: number): HTMLElement {
  const count = Math.max(entry.slots, entry.runs.length);
  const slots: HTMLElement[] = [];
  for (let index = 0; index < count; index += 1) slots.push(slot(entry.runs[index], now, `${entry.chain} slot ${index + 1}`));
  const busy = entry.runs.length;
  const reserved = entry.runs.reduce((sum, run) => sum + (run.memory_mb ?? 0), 0);
  return h(
    'div',
    { class: 'lane', 'data-lane': entry.chain, 'data-worker': worker.id },
    h(
      'div',
      { class: 'lane-head' },
      h('span', { class: 'lane-chain' }, entry.chain),
      h('span', { class: 'lane-use' }, `${busy}/${entry.slots} busy`),
      entry.memory_mb === null ? null : h('span', { class: 'lane-memory' }, `${reserved} of ${entry.memory_mb} MB reserved`),
    ),
    h('ul', { class: 'slots', 'aria-label': `lane ${entry.chain}` }, slots),
  );
}

export function lanesView(snapshot: DashboardSnapshot, now: number): HTMLElement {
  if (snapshot.workers.length === 0) {
    return h('section', { 'aria-labelledby': 'lanes-title' }, h('h2', { id: 'lanes-title' }, 'Lanes now'), h('p', { class: 'empty' }, 'No worker is connected.'));
  }
  return h(
    'section',
    { 'aria-labelledby': 'lanes-title' },
    h('h2', { id: 'lanes-title' }, 'Lanes now'),
    snapshot.workers.map((worker) => {
      const seen = now - worker.last_seen_at;
      return h(
        'article',
        { class: 'worker', 'aria-label': `worker ${worker.name ?? worker.id}` },
        h(
          'header',
          { class: 'worker-head' },
          h('h3', {}, worker.name ?? worker.id),
          h(
            'span',
            { class: 'worker-meta' },
            `capacity ${worker.capacity}${worker.memory_ceiling_mb === null ? '' : ` · memory ceiling ${worker.memory_ceiling_mb} MB`} · connected ${formatDuration(now - worker.connected_at)} · `,
          ),
          h('span', { class: `worker-seen${seen > 30_000 ? ' stale' : ''}`, title: 'time since its last claim or run heartbeat' }, `seen ${formatDuration(seen)} ago`),
        ),
        worker.lanes.map((entry) => lane(worker, entry, now)),
      );
    }),
  );
}
