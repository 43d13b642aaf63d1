/**
 * The timeline: the last few minutes of runs as bars on the row of the lane
 * that ran them, claim → start in a pale shade, start → end in the colour of
 * the outcome (running runs reach "now"). Fast-lane runs that start at once
 * show as bars with no pale head while the other rows are full.
 */
import type { DashboardAttempt, DashboardSnapshot } from '../../protocol/dashboard.ts';
import { formatDuration, h, shortId } from './dom.ts';

function bar(attempt: DashboardAttempt, since: number, span: number, now: number): HTMLElement {
  const end = attempt.finished_at ?? now;
  const left = Math.max(0, (attempt.claimed_at - since) / span);
  const right = Math.min(1, (end - since) / span);
  const startAt = attempt.started_at ?? end;
  const wait = Math.max(0, Math.min(1, (startAt - attempt.claimed_at) / Math.max(1, end - attempt.claimed_at)));
  const took = formatDuration(end - attempt.claimed_at);
  const label = `run ${shortId(attempt.run_id)} (${attempt.queue}) ${attempt.state}, ${took}`;
  return h(
    'a',
    {
      class: `bar state-${attempt.state}`,
      href: `#/runs/${attempt.run_id}`,
      title: label,
      'aria-label': label,
      'data-key': `bar-${attempt.run_id}-${attempt.attempt}`,
      style: `left:${(left * 100).toFixed(3)}%;width:${(Math.max(0.002, right - left) * 100).toFixed(3)}%;--wait:${(wait * 100).toFixed(1)}%`,
    },
  );
}

export function timelineView(snapshot: DashboardSnapshot, now: number): HTMLElement {
  const since = now - (snapshot.now - snapshot.since);
  const span = now - since;
  const minutes = Math.round(span / 60_000);
  const ticks: HTMLElement[] = [];
  for (let minute = minutes; minute >= 0; minute -= 1) {
    ticks.push(h('span', { class: 'tick', style: `left:${(((span - minute * 60_000) / span) * 100).toFixed(2)}%` }, minute === 0 ? 'now' : `−${minute} min`));
  }
  return h(
    'section',
    { 'aria-labelledby': 'timeline-title', class: 'timeline' },
    h('h2', { id: 'timeline-title' }, `Timeline, last ${minutes} minutes`),
    h(
      'p',
      { class: 'legend' },
      h('span', { class: 'key key-wait' }), 'claimed, not started ',
      h('span', { class: 'key state-started' }), 'running ',
      h('span', { class: 'key state-success' }), 'success ',
      h('span', { class: 'key state-failed' }), 'failed or crashed ',
      h('span', { class: 'key state-cancelled' }), 'cancelled or lost',
    ),
    snapshot.timeline.length === 0
      ? h('p', { class: 'empty' }, 'No lane has run anything in this window.')
      : h(
          'div',
          { class: 'tl-grid' },
          snapshot.timeline.map((row) =>
            h(
              'div',
              { class: 'tl-row', 'data-lane': row.chain, 'data-worker': row.worker },
              h('div', { class: 'tl-label' }, h('span', { class: 'tl-worker' }, row.worker_name ?? shortId(row.worker)), h('span', { class: 'tl-chain' }, row.chain)),
              h('div', { class: 'tl-track' }, row.attempts.map((attempt) => bar(attempt, since, span, now))),
            ),
          ),
          h('div', { class: 'tl-row tl-axis', 'aria-hidden': 'true' }, h('div', { class: 'tl-label' }), h('div', { class: 'tl-track' }, ticks)),
        ),
  );
}
