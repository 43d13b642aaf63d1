/** "Runs": filter by state and queue, newest first, a page at a time (the API's keyset pages: `next_cursor` → `before`). */
import { RUN_STATES } from '../../protocol/reasons.ts';
import { formatDuration, h, parseTime, shortId } from './dom.ts';
import type { RunSummaryView as RunSummary } from '../../protocol/api-views.ts';

export const PAGE_SIZE = 25;

export interface RunsQuery {
  state: string;
  queue: string;
  /** The `next_cursor` of each earlier page: the last is `before` of this page's request; dropping it goes back one page. */
  cursors: string[];
}

export function parseRunsQuery(search: string): RunsQuery {
  const params = new URLSearchParams(search);
  return { state: params.get('state') ?? '', queue: params.get('queue') ?? '', cursors: params.getAll('after').filter((id) => id.length > 0) };
}

export function runsQueryString(query: RunsQuery): string {
  const params = new URLSearchParams();
  if (query.state !== '') params.set('state', query.state);
  if (query.queue !== '') params.set('queue', query.queue);
  for (const cursor of query.cursors) params.append('after', cursor);
  const text = params.toString();
  return text === '' ? '' : `?${text}`;
}

/** The API path for one page. */
export function runsApiPath(query: RunsQuery): string {
  const params = new URLSearchParams({ limit: String(PAGE_SIZE) });
  if (query.state !== '') params.set('state', query.state);
  if (query.queue !== '') params.set('queue', query.queue);
  const before = query.cursors.at(-1);
  if (before !== undefined) params.set('before', before);
  return `/api/runs?${params.toString()}`;
}

function took(run: RunSummary): string {
  const start = parseTime(run.started_at);
  const end = parseTime(run.finished_at);
  return start !== null && end !== null ? formatDuration(end - start) : '—';
}

/** `older` is the page's `next_cursor`: absent on a page that was not full, the last one. */
export function runsView(query: RunsQuery, page: RunSummary[], older: string | undefined, queues: string[], navigate: (query: RunsQuery) => void): HTMLElement {
  const filters = h(
    'form',
    {
      class: 'filters',
      'aria-label': 'Filter runs',
      onsubmit: (event: Event) => {
        event.preventDefault();
        const form = event.currentTarget as HTMLFormElement;
        const data = new FormData(form);
        navigate({ state: String(data.get('state') ?? ''), queue: String(data.get('queue') ?? ''), cursors: [] });
      },
    },
    h('label', { for: 'filter-state' }, 'State'),
    h(
      'select',
      { id: 'filter-state', name: 'state', 'data-key': 'filter-state' },
      h('option', { value: '', selected: query.state === '' }, 'any'),
      RUN_STATES.map((state) => h('option', { value: state, selected: query.state === state }, state)),
    ),
    h('label', { for: 'filter-queue' }, 'Queue'),
    h(
      'select',
      { id: 'filter-queue', name: 'queue', 'data-key': 'filter-queue' },
      h('option', { value: '', selected: query.queue === '' }, 'any'),
      [...new Set([...queues, ...(query.queue === '' ? [] : [query.queue])])].map((queue) => h('option', { value: queue, selected: query.queue === queue }, queue)),
    ),
    h('button', { type: 'submit', 'data-key': 'filter-apply' }, 'Apply'),
  );
  return h(
    'section',
    { 'aria-labelledby': 'runs-title' },
    h('h2', { id: 'runs-title' }, 'Runs'),
    filters,
    page.length === 0
      ? h('p', { class: 'empty' }, 'No run matches.')
      : h(
          'table',
          { class: 'data runs' },
          h('caption', { class: 'visually-hidden' }, 'Runs, newest first'),
          h('thead', {}, h('tr', {}, ['Run', 'Queue', 'State', 'Attempts', 'Submitted', 'Took', 'Worker'].map((title) => h('th', { scope: 'col' }, title)))),
          h(
            'tbody',
            {},
            page.map((run) =>
              h(
                'tr',
                { 'data-run': run.id },
                h('td', {}, h('a', { href: `#/runs/${run.id}`, class: 'mono' }, shortId(run.id))),
                h('td', {}, run.queue),
                h('td', {}, h('span', { class: `badge state-${run.state}` }, run.state), run.dead_letter ? h('span', { class: 'badge badge-dead' }, 'dead letter') : null),
                h('td', { class: 'num' }, `${run.attempts}/${run.max_attempts}`),
                h('td', {}, run.created_at === null ? '—' : new Date(run.created_at).toLocaleString()),
                h('td', { class: 'num' }, took(run)),
                h('td', {}, run.worker_name ?? (run.worker === null ? '—' : shortId(run.worker))),
              ),
            ),
          ),
        ),
    h(
      'nav',
      { class: 'pager', 'aria-label': 'Pages of runs' },
      h('button', { type: 'button', 'data-key': 'page-newest', disabled: query.cursors.length === 0, onclick: () => navigate({ ...query, cursors: [] }) }, 'Newest'),
      h('button', { type: 'button', 'data-key': 'page-newer', disabled: query.cursors.length === 0, onclick: () => navigate({ ...query, cursors: query.cursors.slice(0, -1) }) }, '← Newer'),
      h('span', {}, `page ${query.cursors.length + 1}`),
      h('button', { type: 'button', 'data-key': 'page-older', disabled: older === undefined, onclick: () => older !== undefined && navigate({ ...query, cursors: [...query.cursors, older] }) }, 'Older →'),
    ),
  );
}
