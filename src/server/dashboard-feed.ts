/**
 * The dashboard's live feed: Server-Sent Events on `GET /api/events`. While at
 * least one browser listens, one timer builds the snapshot every `intervalMs`
 * and sends it to every listener when it changed (and at least every
 * `refreshMs`, which also keeps proxies from closing an idle stream). One
 * build serves every listener, so the cost does not grow with the number of
 * open dashboards; a listener whose socket is full is sent only the latest
 * snapshot once it drains.
 *
 * States: idle → live (first listener) → idle (last one gone); any → stopped.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { DashboardSnapshot } from '../protocol/index.ts';
import { StateMachine } from '../state-machine.ts';

export const DEFAULT_FEED_INTERVAL_MS = 500;
export const DEFAULT_FEED_REFRESH_MS = 10_000;
/** Open streams beyond this are refused with 503: each holds a socket. */
export const MAX_FEED_LISTENERS = 64;

type FeedState =
  | { kind: 'idle' }
  /** `building`: a snapshot is being read; a tick that comes meanwhile is skipped, not queued. */
  | { kind: 'live'; timer: NodeJS.Timeout; lastKey: string; lastSentAt: number; building: boolean }
  | { kind: 'stopped' };

interface Listener {
  res: ServerResponse;
  /** The socket buffer is full: the latest frame waits here for `drain`. */
  held: string | null;
}

export interface DashboardFeedOptions {
  /** Undefined while the store is closed. */
  snapshot: () => Promise<DashboardSnapshot | undefined>;
  logger: Logger;
  intervalMs?: number;
  refreshMs?: number;
}

export class DashboardFeed {
  readonly #options: Required<DashboardFeedOptions>;
  readonly #listeners = new Set<Listener>();
  readonly #state: StateMachine<FeedState>;

  constructor(options: DashboardFeedOptions) {
    this.#options = { intervalMs: DEFAULT_FEED_INTERVAL_MS, refreshMs: DEFAULT_FEED_REFRESH_MS, ...options };
    this.#state = new StateMachine<FeedState>({
      name: 'dashboard feed',
      initial: { kind: 'idle' },
      transitions: { idle: ['live', 'stopped'], live: ['idle', 'stopped'], stopped: [] },
      logger: options.logger,
    });
  }

  get listeners(): number {
    return this.#listeners.size;
  }

  /** Leaving `live` stops its timer: the timer belongs to the state. */
  #setState(next: FeedState): void {
    const live = this.#state.when('live');
    this.#state.to(next);
    if (live !== undefined) clearInterval(live.timer);
  }

  /**
   * Answers `req` with an event stream, or returns false (the caller answers
   * 503) when the feed is stopped or full.
   */
  subscribe(req: IncomingMessage, res: ServerResponse): boolean {
    if (this.#state.kind === 'stopped' || this.#listeners.size >= MAX_FEED_LISTENERS) return false;
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      'x-accel-buffering': 'no',
    });
    const listener: Listener = { res, held: null };
    this.#listeners.add(listener);
    res.on('drain', () => {
      const held = listener.held;
      listener.held = null;
      if (held !== null) this.#write(listener, held);
    });
    req.on('close', () => this.#remove(listener));
    res.on('close', () => this.#remove(listener));
    res.write('retry: 2000\n\n');
    if (this.#state.kind === 'idle') {
      const timer = setInterval(() => void this.#tick(), this.#options.intervalMs);
      timer.unref();
      this.#setState({ kind: 'live', timer, lastKey: '', lastSentAt: 0, building: false });
    }
    void this.#frame().then((frame) => {
      if (frame !== undefined && this.#listeners.has(listener)) this.#write(listener, frame.text);
    });
    return true;
  }

  /** Ends every stream and refuses new ones. */
  stop(): void {
    if (this.#state.kind === 'stopped') return;
    this.#setState({ kind: 'stopped' });
    for (const listener of this.#listeners) listener.res.end();
    this.#listeners.clear();
  }

  #remove(listener: Listener): void {
    if (!this.#listeners.delete(listener)) return;
    if (this.#listeners.size === 0 && this.#state.kind === 'live') this.#setState({ kind: 'idle' });
  }

  async #frame(): Promise<{ key: string; text: string } | undefined> {
    let snapshot: DashboardSnapshot | undefined;
    try {
      snapshot = await this.#options.snapshot();
    } catch (error) {
      this.#options.logger.warn({ err: error }, 'dashboard snapshot failed');
      return undefined;
    }
    if (snapshot === undefined) return undefined;
    // The clock fields change every tick; what the page shows changes only with the rest.
    const key = JSON.stringify({ ...snapshot, now: 0, since: 0 });
    return { key, text: `event: snapshot\ndata: ${JSON.stringify(snapshot)}\n\n` };
  }

  async #tick(): Promise<void> {
    const state = this.#state.when('live');
    if (state === undefined || state.building) return;
    state.building = true;
    const frame = await this.#frame();
    state.building = false;
    // The last listener may have gone (or the feed stopped) while the store answered.
    if (frame === undefined || this.#state.current !== state) return;
    const now = Date.now();
    if (frame.key === state.lastKey && now - state.lastSentAt < this.#options.refreshMs) return;
    state.lastKey = frame.key;
    state.lastSentAt = now;
    for (const listener of this.#listeners) this.#write(listener, frame.text);
  }

  #write(listener: Listener, text: string): void {
    if (listener.res.writableNeedDrain) {
      listener.held = text;
      return;
    }
    listener.res.write(text);
  }
}
