/**
 * The timeline: the last few minutes of runs as bars on the row of the lane
 * that ran them, claim → start in a pale shade, start → end in the colour of
 * the outcome (running runs reach "now"). Fast-lane runs that start at once
 * show as bars with no pale head while the other rows are full.
 */
import type { DashboardAttempt, DashboardSnapshot } from '../../protocol/dashboard.ts';
import { formatDuration, h, shortId } from './dom.ts';

const TRACK_PX = 14;

/**
 * Gives each attempt the first track (sub-row) free at its claim, so runs that
 * overlapped on a lane of several slots sit one above the other instead of on
 * top of each other. Returns each attempt's track and how many were needed.
 */
export function packTracks(attempts: readonly DashboardAttempt[], now: number): { tracks: number[]; count: number } {
  const ends: number[] = [];
  const tracks = attempts.map((attempt) => {
    let track = ends.findIndex((end) => end <= attempt.claimed_at);
    if (track < 0) track = ends.length;
    ends[track] = attempt.finished_at ?? now;
    return track;
  });
  return { tracks, count: Math.max(1, ends.length) };
}

function bar(attempt: DashboardAttempt, track: number, since: number, span: number, now: number): HTMLElement {
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
      // Out of the Tab order: hundreds of bars would bury the page's controls. Each run is a link on the runs list and its slot.
      tabindex: '-1',
      style: `top:${track * TRACK_PX + 2}px;height:${TRACK_PX - 3}px;left:${(left * 100).toFixed(3)}%;width:${(Math.max(0.002, right - left) * 100).toFixed(3)}%;--waited:${(wait * 100).toFixed(1)}%`,
    },
  );
}

/** The windows a person can pick; the server sends the widest. */
export const TIMELINE_WINDOWS_MIN = [1, 2, 5] as const;

export function timelineView(snapshot: DashboardSnapshot, now: number, minutes: number, pick: (minutes: number) => void): HTMLElement {
  const span = Math.min(minutes * 60_000, snapshot.now - snapshot.since);
  const since = now - span;
  const ticks: HTMLElement[] = [];
  for (let minute = minutes; minute >= 0; minute -= 1) {
    ticks.push(h('span', { class: 'tick', style: `left:${(((span - minute * 60_000) / span) * 100).toFixed(2)}%` }, minute === 0 ? 'now' : `−${minute} min`));
  }
  return h(
    'section',
    { 'aria-labelledby': 'timeline-title', class: 'timeline' },
    h(
      'div',
      { class: 'tl-head' },
      h('h2', { id: 'timeline-title' }, `Timeline, last ${minutes} ${minutes === 1 ? 'minute' : 'minutes'}`),
      h(
        'div',
        { class: 'tl-window', role: 'group', 'aria-label': 'Timeline window' },
        TIMELINE_WINDOWS_MIN.map((option) =>
          h('button', { type: 'button', 'data-key': `tl-window-${option}`, 'aria-pressed': option === minutes ? 'true' : 'false', onclick: () => pick(option) }, `${option} min`),
        ),
      ),
    ),
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
          snapshot.timeline.map((row) => {
            const shown = row.attempts.filter((attempt) => (attempt.finished_at ?? now) >= since);
            const { tracks, count } = packTracks(shown, now);
            return h(
              'div',
              { class: 'tl-row', 'data-lane': row.chain, 'data-worker': row.worker },
              h('div', { class: 'tl-label' }, h('span', { class: 'tl-worker' }, row.worker_name ?? shortId(row.worker)), h('span', { class: 'tl-chain' }, row.chain)),
              h('div', { class: 'tl-track', style: `height:${count * TRACK_PX + 3}px` }, shown.map((attempt, index) => bar(attempt, tracks[index] ?? 0, since, span, now))),
            );
          }),
          h('div', { class: 'tl-row tl-axis', 'aria-hidden': 'true' }, h('div', { class: 'tl-label' }), h('div', { class: 'tl-track' }, ticks)),
        ),
  );
}
