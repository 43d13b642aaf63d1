/**
 * The worker's health and metrics HTTP server on `--port` (0 picks a free
 * port; `port` tells which): `/livez` answers while the process is up,
 * `/readyz` is 200 only while connected and not draining, `/metrics` is
 * Prometheus text.
 */
import { createServer } from 'node:http';
import type { Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';

export interface Readiness {
  ready: boolean;
  body: Record<string, unknown>;
}

export interface HealthServerOptions {
  port: number;
  /** Loopback by default: health endpoints are for the local supervisor. */
  host?: string;
  registry: Registry;
  readiness: () => Readiness;
  logger: Logger;
}

export class HealthServer {
  readonly #options: HealthServerOptions;
  readonly #server: Server;
  #port: number | null = null;

  constructor(options: HealthServerOptions) {
    this.#options = options;
    this.#server = createServer((request, response) => {
      void this.#handle(request.method ?? 'GET', request.url ?? '/', response);
    });
  }

  /** The bound port; throws before `listen()`. */
  get port(): number {
    if (this.#port === null) throw new Error('health server is not listening');
    return this.#port;
  }

  async listen(): Promise<number> {
    if (this.#port !== null) return this.#port;
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(this.#options.port, this.#options.host ?? '0.0.0.0', () => {
        this.#server.off('error', reject);
        resolve();
      });
    });
    this.#port = (this.#server.address() as AddressInfo).port;
    return this.#port;
  }

  async close(): Promise<void> {
    if (!this.#server.listening) return;
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  async #handle(method: string, url: string, response: ServerResponse): Promise<void> {
    const path = url.split('?')[0];
    try {
      if (method !== 'GET' && method !== 'HEAD') return send(response, 405, 'application/json', JSON.stringify({ error: 'method not allowed' }));
      if (path === '/livez') return send(response, 200, 'application/json', JSON.stringify({ status: 'ok' }));
      if (path === '/readyz') {
        const { ready, body } = this.#options.readiness();
        return send(response, ready ? 200 : 503, 'application/json', JSON.stringify({ status: ready ? 'ready' : 'not ready', ...body }));
      }
      if (path === '/metrics') {
        const text = await this.#options.registry.metrics();
        return send(response, 200, this.#options.registry.contentType, text);
      }
      return send(response, 404, 'application/json', JSON.stringify({ error: 'not found' }));
    } catch (error) {
      this.#options.logger.error({ err: error, path }, 'health request failed');
      send(response, 500, 'application/json', JSON.stringify({ error: 'internal error' }));
    }
  }
}

function send(response: ServerResponse, status: number, type: string, body: string): void {
  response.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body) });
  response.end(body);
}
