/** "Queues": depth, oldest waiting, runs per minute, suspended or not, with suspend/resume. */
import type { DashboardSnapshot } from '../../protocol/dashboard.ts';
import { formatDuration, h } from './dom.ts';

export interface QueueActions {
  setSuspended: (queue: string, suspended: boolean) => void;
}

export function queuesView(snapshot: DashboardSnapshot, now: number, actions: QueueActions): HTMLElement {
  return h(
    'section',
    { 'aria-labelledby': 'queues-title' },
    h('h2', { id: 'queues-title' }, 'Queues'),
    snapshot.queues.length === 0
      ? h('p', { class: 'empty' }, 'No queue holds a run yet.')
      : h(
          'table',
          { class: 'data' },
          h('caption', { class: 'visually-hidden' }, 'Queues with their depth, age of the oldest waiting run and throughput'),
          h(
            'thead',
            {},
            h('tr', {}, ['Queue', 'State', 'Waiting', 'Oldest waiting', 'Running', 'Ended / min', 'Succeeded', 'Failed', ''].map((title) => h('th', { scope: 'col' }, title))),
          ),
          h(
            'tbody',
            {},
            snapshot.queues.map((queue) => {
              const failed = (queue.counts.failed ?? 0) + (queue.counts.crashed ?? 0) + (queue.counts.killed ?? 0) + (queue.counts.exception ?? 0) + (queue.counts.lost ?? 0);
              return h(
                'tr',
                { 'data-queue': queue.name },
                h('th', { scope: 'row' }, h('a', { href: `#/runs?queue=${encodeURIComponent(queue.name)}` }, queue.name)),
                h('td', {}, h('span', { class: `badge ${queue.suspended ? 'badge-suspended' : 'badge-active'}` }, queue.suspended ? 'suspended' : 'active')),
                h('td', { class: 'num' }, queue.depth),
                h('td', { class: 'num' }, queue.oldest_available_at === null ? '—' : formatDuration(now - queue.oldest_available_at)),
                h('td', { class: 'num' }, queue.running),
                h('td', { class: 'num' }, queue.per_minute),
                h('td', { class: 'num' }, queue.counts.success ?? 0),
                h('td', { class: 'num' }, failed),
                h(
                  'td',
                  {},
                  h(
                    'button',
                    {
                      type: 'button',
                      'data-key': `suspend-${queue.name}`,
                      'aria-label': `${queue.suspended ? 'Resume' : 'Suspend'} queue ${queue.name}`,
                      onclick: () => actions.setSuspended(queue.name, !queue.suspended),
                    },
                    queue.suspended ? 'Resume' : 'Suspend',
                  ),
                ),
              );
            }),
          ),
        ),
  );
}
