/**
 * The dashboard's HTTP routes: the page shell and its two files (open: they
 * hold no run data), the snapshot `GET /api/dashboard` and its live stream
 * `GET /api/events` (under `/api`, so behind the API's token like the rest).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { dashboardAssets } from '../dashboard/dashboard-assets.ts';
import type { DashboardAssets } from '../dashboard/dashboard-assets.ts';
import type { DashboardSnapshot } from '../protocol/index.ts';
import type { DashboardFeed } from './dashboard-feed.ts';

/**
 * The page runs only its own script and talks only to its own origin; no
 * frame may embed it (clickjacking its buttons), and no referrer leaves it.
 */
const PAGE_HEADERS = {
  'content-security-policy': "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'cache-control': 'no-cache',
};

const CONTENT_TYPES: Record<keyof DashboardAssets, string> = {
  html: 'text/html; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8',
};

export interface DashboardRoutesDeps {
  feed: DashboardFeed;
  snapshot: () => Promise<DashboardSnapshot>;
}

export class DashboardRoutes {
  readonly #deps: DashboardRoutesDeps;

  constructor(deps: DashboardRoutesDeps) {
    this.#deps = deps;
  }

  /** `GET /` (`html`), `/dashboard.js`, `/dashboard.css`. */
  async asset(res: ServerResponse, kind: keyof DashboardAssets): Promise<void> {
    const assets = await dashboardAssets();
    const body = assets[kind];
    res.writeHead(200, { ...PAGE_HEADERS, 'content-type': CONTENT_TYPES[kind], 'content-length': Buffer.byteLength(body) });
    res.end(body);
  }

  /** `GET /api/dashboard`: the picture now, as the stream sends it. */
  async snapshot(res: ServerResponse): Promise<void> {
    const text = JSON.stringify(await this.#deps.snapshot());
    res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
    res.end(text);
  }

  /** `GET /api/events`: the snapshot at once, then whenever it changes. False when the feed refuses (stopping, or full). */
  events(req: IncomingMessage, res: ServerResponse): boolean {
    return this.#deps.feed.subscribe(req, res);
  }
}
