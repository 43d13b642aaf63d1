/**
 * The dashboard page: a header with the views and the connection status, and
 * one view at a time chosen by the address's fragment (`#/`, `#/queues`,
 * `#/runs?state=…`, `#/runs/ID`). The live picture arrives on the event
 * stream; the runs list and a run's page are read from the JSON API and read
 * again (at most once a second) when the picture changes.
 *
 * States: signed-out (the API answered 401; the sign-in form shows) → live
 * (the stream is followed; `status` says whether it is connected) → signed-out
 * on a 401 or sign-out.
 */
import type { DashboardSnapshot } from '../../protocol/dashboard.ts';
import { TERMINAL_STATES } from '../../protocol/reasons.ts';
import { ApiError, followEvents, getJson, postJson, signIn, signOut, takeTokenFromUrl, token } from './api.ts';
import { h, render } from './dom.ts';
import { lanesView } from './lanes-view.ts';
import { queuesView } from './queues-view.ts';
import { runView } from './run-view.ts';
import { parseRunsQuery, runsApiPath, runsQueryString, runsView } from './runs-view.ts';
import type { RunsQuery } from './runs-view.ts';
import { signInView } from './sign-in.ts';
import { timelineView } from './timeline-view.ts';
import type { LogLineView as LogLine, RunDetailView as RunDetail, RunSummaryView as RunSummary } from '../../protocol/api-views.ts';

type Route = { name: 'lanes' } | { name: 'queues' } | { name: 'runs'; query: RunsQuery } | { name: 'run'; id: string };

type PageState =
  | { name: 'signed-out'; problem: string | null }
  | { name: 'live'; stream: AbortController; status: 'connecting' | 'live' | 'reconnecting' };

/** What the runs list or a run's page last read, for the route it was read for. */
type Loaded =
  | { name: 'none' }
  | { name: 'runs'; key: string; runs: RunSummary[]; nextCursor: string | undefined }
  | { name: 'run'; id: string; run: RunDetail; logs: LogLine[] };

const RELOAD_MIN_MS = 1000;

function parseRoute(hash: string): Route {
  const [path = '', search = ''] = hash.replace(/^#/, '').split('?');
  const parts = path.split('/').filter((part) => part.length > 0);
  if (parts[0] === 'queues') return { name: 'queues' };
  if (parts[0] === 'runs' && parts[1] !== undefined) return { name: 'run', id: decodeURIComponent(parts[1]) };
  if (parts[0] === 'runs') return { name: 'runs', query: parseRunsQuery(search) };
  return { name: 'lanes' };
}

class DashboardPage {
  readonly #main: HTMLElement;
  readonly #status: HTMLElement;
  readonly #nav: HTMLElement;
  readonly #notice: HTMLElement;
  #state: PageState = { name: 'signed-out', problem: null };
  #route: Route = parseRoute(location.hash);
  #snapshot: DashboardSnapshot | null = null;
  /** Server clock minus ours, from the last snapshot. */
  #offsetMs = 0;
  #loaded: Loaded = { name: 'none' };
  #loadedAt = 0;
  #loading = false;
  #timelineMinutes = 2;

  constructor(root: HTMLElement) {
    this.#status = h('span', { class: 'status', role: 'status', 'aria-live': 'polite' }, 'connecting');
    this.#nav = h('nav', { 'aria-label': 'Views' });
    this.#notice = h('div', { class: 'notice', role: 'alert' });
    this.#main = h('main', { id: 'main', tabindex: '-1' });
    const signOutButton = h('button', { type: 'button', class: 'signout', onclick: () => this.#signOut() }, 'Sign out');
    render(root, h('header', { class: 'top' }, h('h1', {}, h('a', { href: '#/' }, 'Lanes')), this.#nav, this.#status, signOutButton), this.#notice, this.#main);
    window.addEventListener('hashchange', () => {
      this.#route = parseRoute(location.hash);
      this.#loaded = { name: 'none' };
      this.#notice.textContent = '';
      this.#draw();
      void this.#load();
      this.#main.focus();
    });
    // Ages and the timeline move with the clock even when nothing else changes.
    setInterval(() => {
      if (this.#state.name === 'live' && (this.#route.name === 'lanes' || this.#route.name === 'queues')) this.#draw();
    }, 1000);
  }

  #setState(next: PageState): void {
    if (this.#state.name === 'live' && next.name === 'signed-out') this.#state.stream.abort();
    this.#state = next;
    this.#draw();
  }

  start(): void {
    takeTokenFromUrl();
    this.#connect();
  }

  #connect(): void {
    const stream = new AbortController();
    this.#setState({ name: 'live', stream, status: 'connecting' });
    void followEvents(
      {
        snapshot: (snapshot) => this.#onSnapshot(snapshot),
        status: (status) => {
          if (status === 'unauthorized') {
            this.#setState({ name: 'signed-out', problem: token() === null ? null : 'The server refused this token.' });
            return;
          }
          if (this.#state.name === 'live' && this.#state.stream === stream) {
            this.#state.status = status;
            this.#drawStatus();
          }
        },
      },
      stream.signal,
    );
    void this.#load();
  }

  #signOut(): void {
    signOut();
    this.#setState({ name: 'signed-out', problem: null });
  }

  #onSnapshot(snapshot: DashboardSnapshot): void {
    this.#snapshot = snapshot;
    this.#offsetMs = snapshot.now - Date.now();
    this.#draw();
    if (Date.now() - this.#loadedAt >= RELOAD_MIN_MS) void this.#load();
  }

  #now(): number {
    return Date.now() + this.#offsetMs;
  }

  /** Reads what the runs list or a run's page shows; a list is read again only while it shows the newest page, a run only until it ends. */
  async #load(): Promise<void> {
    const route = this.#route;
    if (this.#loading || this.#state.name !== 'live') return;
    if (route.name === 'runs' && this.#loaded.name === 'runs' && route.query.cursors.length > 0 && this.#loaded.key === runsQueryString(route.query)) return;
    if (route.name === 'run' && this.#loaded.name === 'run' && this.#loaded.id === route.id && TERMINAL_STATES.has(this.#loaded.run.state) && !this.#loaded.run.dead_letter) return;
    if (route.name !== 'runs' && route.name !== 'run') return;
    this.#loading = true;
    this.#loadedAt = Date.now();
    try {
      if (route.name === 'runs') {
        const { runs, next_cursor: nextCursor } = await getJson<{ runs: RunSummary[]; next_cursor?: string }>(runsApiPath(route.query));
        if (this.#route === route) this.#loaded = { name: 'runs', key: runsQueryString(route.query), runs, nextCursor };
      } else {
        const path = `/api/runs/${encodeURIComponent(route.id)}`;
        const [run, { logs }] = await Promise.all([getJson<RunDetail>(path), getJson<{ logs: LogLine[] }>(`${path}/logs`)]);
        if (this.#route === route) this.#loaded = { name: 'run', id: route.id, run, logs };
      }
    } catch (error) {
      this.#failed(error);
    } finally {
      this.#loading = false;
    }
    this.#draw();
  }

  #failed(error: unknown): void {
    if (error instanceof ApiError && error.status === 401) {
      this.#setState({ name: 'signed-out', problem: token() === null ? null : 'The server refused this token.' });
      return;
    }
    this.#notice.textContent = error instanceof Error ? error.message : String(error);
  }

  async #act(action: () => Promise<unknown>, done: string): Promise<void> {
    try {
      await action();
      this.#notice.textContent = '';
      this.#status.textContent = done;
      this.#loadedAt = 0;
      this.#loaded = { name: 'none' };
      await this.#load();
    } catch (error) {
      this.#failed(error);
    }
  }

  #drawStatus(): void {
    const state = this.#state;
    this.#status.textContent = state.name === 'live' ? state.status : 'signed out';
    this.#status.className = `status status-${state.name === 'live' ? state.status : 'signed-out'}`;
  }

  #draw(): void {
    this.#drawStatus();
    const current = this.#route.name === 'run' ? 'runs' : this.#route.name;
    render(
      this.#nav,
      [['lanes', '#/', 'Lanes'], ['queues', '#/queues', 'Queues'], ['runs', '#/runs', 'Runs']].map(([name, href, title]) =>
        h('a', { href: href ?? '#/', 'aria-current': name === current ? 'page' : null }, title),
      ),
    );
    const state = this.#state;
    if (state.name === 'signed-out') {
      render(
        this.#main,
        signInView(state.problem, (value) => {
          signIn(value);
          this.#connect();
        }),
      );
      return;
    }
    const snapshot = this.#snapshot;
    const route = this.#route;
    const now = this.#now();
    if (route.name === 'lanes') {
      render(this.#main, snapshot === null ? h('p', {}, 'Waiting for the server…') : [
              lanesView(snapshot, now),
              timelineView(snapshot, now, this.#timelineMinutes, (minutes) => {
                this.#timelineMinutes = minutes;
                this.#draw();
              }),
            ]);
    } else if (route.name === 'queues') {
      render(
        this.#main,
        snapshot === null
          ? h('p', {}, 'Waiting for the server…')
          : queuesView(snapshot, now, {
              setSuspended: (queue, suspended) =>
                void this.#act(() => postJson(`/api/queues/${encodeURIComponent(queue)}/${suspended ? 'suspend' : 'resume'}`), `queue ${queue} ${suspended ? 'suspended' : 'resumed'}`),
            }),
      );
    } else if (route.name === 'runs') {
      const loaded = this.#loaded;
      const queues = snapshot?.queues.map((queue) => queue.name) ?? [];
      render(
        this.#main,
        loaded.name === 'runs'
          ? runsView(route.query, loaded.runs, loaded.nextCursor, queues, (query) => {
              location.hash = `#/runs${runsQueryString(query)}`;
            })
          : h('p', {}, 'Loading runs…'),
      );
    } else {
      const loaded = this.#loaded;
      render(
        this.#main,
        loaded.name === 'run' && loaded.id === route.id
          ? runView(loaded.run, loaded.logs, {
              cancel: (id) => void this.#act(() => postJson(`/api/runs/${encodeURIComponent(id)}/cancel`), 'run cancelled'),
              retry: (id) => void this.#act(() => postJson(`/api/runs/${encodeURIComponent(id)}/retry`), 'dead letter queued again'),
            })
          : h('p', {}, 'Loading the run…'),
      );
    }
  }
}

const root = document.getElementById('app');
if (root !== null) new DashboardPage(root).start();
