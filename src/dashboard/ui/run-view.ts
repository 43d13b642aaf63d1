/**
 * A run's page: final state, timings (submit → claim → start → end), attempts
 * and retry history, steps, logs; cancel while it has not ended, retry when it
 * is a dead letter.
 */
import { TERMINAL_STATES } from '../../protocol/reasons.ts';
import { formatDuration, formatTime, h, parseTime, shortId } from './dom.ts';
import type { LogLineView as LogLine, RunDetailView as RunDetail } from '../../protocol/api-views.ts';

export interface RunActions {
  cancel: (id: string) => void;
  retry: (id: string) => void;
}

function timing(label: string, at: number | null, from: number | null): HTMLElement[] {
  return [h('dt', {}, label), h('dd', {}, formatTime(at), at !== null && from !== null ? h('span', { class: 'delta' }, ` +${formatDuration(at - from)}`) : null)];
}

/** Log timestamps are microseconds since the epoch, as a string (the protocol's form). */
function logTime(timestamp: string): string {
  return /^\d{13,20}$/.test(timestamp) ? formatTime(Math.floor(Number(timestamp) / 1000)) : timestamp;
}

function logText(line: LogLine): string {
  return line.message.map((part) => (typeof part === 'string' ? part : JSON.stringify(part))).join(' ');
}

export function runView(run: RunDetail, logs: LogLine[], actions: RunActions): HTMLElement {
  const created = parseTime(run.created_at);
  const claimed = parseTime(run.claimed_at);
  const started = parseTime(run.started_at);
  const finished = parseTime(run.finished_at);
  const ended = TERMINAL_STATES.has(run.state);
  return h(
    'section',
    { 'aria-labelledby': 'run-title', class: 'run' },
    h('p', {}, h('a', { href: '#/runs' }, '← All runs')),
    h('h2', { id: 'run-title' }, 'Run ', h('span', { class: 'mono' }, shortId(run.id)), ' ', h('span', { class: `badge state-${run.state}`, id: 'run-state' }, run.state), run.dead_letter ? h('span', { class: 'badge badge-dead' }, 'dead letter') : null),
    h('p', { class: 'mono small' }, run.id),
    h(
      'div',
      { class: 'actions' },
      h('button', { type: 'button', 'data-key': 'run-cancel', disabled: ended, onclick: () => actions.cancel(run.id) }, 'Cancel run'),
      run.dead_letter ? h('button', { type: 'button', 'data-key': 'run-retry', onclick: () => actions.retry(run.id) }, 'Retry dead letter') : null,
    ),
    h(
      'div',
      { class: 'run-facts' },
      h(
        'dl',
        { class: 'facts' },
        h('dt', {}, 'Queue'), h('dd', {}, run.queue),
        h('dt', {}, 'Attempts'), h('dd', {}, `${run.attempts} of ${run.max_attempts}`),
        h('dt', {}, 'Worker'), h('dd', {}, run.worker_name ?? run.worker ?? '—'),
        run.error_type === null ? null : [h('dt', {}, 'Error'), h('dd', { class: 'error' }, `${run.error_type}: ${run.error_message ?? ''}`)],
        run.waiting_reason === undefined || run.waiting_reason === null ? null : [h('dt', {}, 'Waiting'), h('dd', { id: 'run-waiting' }, run.waiting_reason)],
      ),
      h('dl', { class: 'facts timings', 'aria-label': 'Timings' }, timing('Submitted', created, null), timing('Claimed', claimed, created), timing('Started', started, claimed), timing('Ended', finished, started)),
    ),
    h('h3', {}, 'History'),
    run.history.length === 0
      ? h('p', { class: 'empty' }, 'Not claimed yet.')
      : h(
          'table',
          { class: 'data' },
          h('thead', {}, h('tr', {}, ['Attempt', 'Worker', 'State', 'Claimed', 'Started', 'Ended', 'Error'].map((title) => h('th', { scope: 'col' }, title)))),
          h(
            'tbody',
            {},
            run.history.map((attempt) =>
              h(
                'tr',
                {},
                h('td', { class: 'num' }, attempt.attempt),
                h('td', {}, attempt.worker_name ?? (attempt.worker === null ? '—' : shortId(attempt.worker))),
                h('td', {}, h('span', { class: `badge state-${attempt.state}` }, attempt.state)),
                h('td', {}, formatTime(parseTime(attempt.claimed_at))),
                h('td', {}, formatTime(parseTime(attempt.started_at))),
                h('td', {}, formatTime(parseTime(attempt.finished_at))),
                h('td', {}, attempt.error_type === null ? '' : `${attempt.error_type}: ${attempt.error_message ?? ''}`),
              ),
            ),
          ),
        ),
    h('h3', {}, 'Steps'),
    run.steps.length === 0
      ? h('p', { class: 'empty' }, 'No step has started.')
      : h(
          'table',
          { class: 'data' },
          h('thead', {}, h('tr', {}, ['Attempt', 'Job', 'Outcome', 'Started', 'Took'].map((title) => h('th', { scope: 'col' }, title)))),
          h(
            'tbody',
            {},
            run.steps.map((step) =>
              h(
                'tr',
                {},
                h('td', { class: 'num' }, step.attempt),
                h('td', {}, step.job_id),
                h('td', {}, step.reason ?? 'running', step.error_type === null ? '' : ` (${step.error_type}: ${step.error_message ?? ''})`),
                h('td', {}, formatTime(parseTime(step.started_at))),
                h('td', { class: 'num' }, step.duration_ms === null ? '—' : formatDuration(step.duration_ms)),
              ),
            ),
          ),
        ),
    h('h3', {}, 'Logs'),
    logs.length === 0
      ? h('p', { class: 'empty' }, 'No log lines.')
      : h(
          'ol',
          { class: 'logs', 'aria-label': 'Log lines' },
          logs.map((line) =>
            h('li', { class: `log log-${line.level}` }, h('span', { class: 'log-time' }, logTime(line.timestamp)), h('span', { class: 'log-source' }, line.source), h('span', { class: 'log-text' }, logText(line))),
          ),
        ),
    ended && run.final_state !== null
      ? h('details', { class: 'final' }, h('summary', {}, 'Final state'), h('pre', {}, JSON.stringify(run.final_state, null, 2)))
      : null,
  );
}
