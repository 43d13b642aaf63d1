/**
 * The worker endpoint: upgrades `GET /worker/websocket?token=…` to a Phoenix
 * socket after checking the worker token, and keeps the live connections.
 *
 * States: open → closing → closed. `close()` says goodbye to every socket
 * (1001), waits for them to finish closing (forcing the stragglers after a
 * short wait) and refuses upgrades from then on; the promise of that close
 * travels in the `closing` state, so calls made meanwhile share it.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { WebSocketServer } from 'ws';
import { verifyWorkerToken } from '../protocol/index.ts';
import { StateMachine } from '../state-machine.ts';
import type { ChannelRouter } from './phoenix-channel.ts';
import { PhoenixConnection } from './phoenix-connection.ts';

/** The path the phoenix client connects to for the endpoint `ws://HOST:PORT/worker`. */
export const WORKER_SOCKET_PATH = '/worker/websocket';

type SocketServerState = { kind: 'open' } | { kind: 'closing'; done: Promise<void> } | { kind: 'closed' };

export interface PhoenixSocketServerOptions {
  secret: string;
  router: ChannelRouter;
  logger: Logger;
  /** The protocol's frame limit: bigger frames get a `frame_too_large` error reply. */
  maxFrameBytes: number;
  /** The hard ceiling: ws closes the socket (1009) on a bigger frame, before it is buffered. */
  frameCeilingBytes: number;
  idleTimeoutMs: number;
  /** Called for every connection that opens, after authentication. */
  onConnection?: (connection: PhoenixConnection) => void;
}

export class PhoenixSocketServer {
  readonly #options: PhoenixSocketServerOptions;
  readonly #logger: Logger;
  readonly #wss: WebSocketServer;
  readonly #connections = new Set<PhoenixConnection>();
  readonly #state: StateMachine<SocketServerState>;

  constructor(options: PhoenixSocketServerOptions) {
    this.#options = options;
    this.#logger = options.logger;
    // noServer: the HTTP server owns the port and hands us upgrades. maxPayload
    // is the hard ceiling, above the protocol limit, so that a frame a little
    // too big is answered (`frame_too_large`) rather than killing the socket;
    // past the ceiling ws closes with 1009 without buffering the frame.
    this.#wss = new WebSocketServer({ noServer: true, maxPayload: options.frameCeilingBytes, clientTracking: false });
    this.#state = new StateMachine<SocketServerState>({
      name: 'socket server',
      initial: { kind: 'open' },
      transitions: { open: ['closing'], closing: ['closed'], closed: [] },
      logger: this.#logger,
    });
  }

  get connectionCount(): number {
    return this.#connections.size;
  }

  connections(): PhoenixConnection[] {
    return [...this.#connections];
  }

  /** Handles an HTTP upgrade; refuses with 404 for other paths and 401 without a valid worker token. */
  handleUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): void {
    const url = new URL(request.url ?? '/', 'http://localhost');
    if (this.#state.kind !== 'open') {
      refuse(socket, 503, 'Service Unavailable');
      return;
    }
    if (url.pathname !== WORKER_SOCKET_PATH) {
      refuse(socket, 404, 'Not Found');
      return;
    }
    const token = url.searchParams.get('token');
    if (!token) {
      this.#logger.warn('socket refused: no token');
      refuse(socket, 401, 'Unauthorized');
      return;
    }
    verifyWorkerToken(this.#options.secret, token).then(
      ({ workerId }) => {
        if (this.#state.kind !== 'open' || socket.destroyed) {
          refuse(socket, 503, 'Service Unavailable');
          return;
        }
        this.#wss.handleUpgrade(request, socket, head, (ws) => {
          const connection = new PhoenixConnection({
            id: randomUUID(),
            workerId,
            socket: ws,
            router: this.#options.router,
            logger: this.#logger.child({ workerId }),
            idleTimeoutMs: this.#options.idleTimeoutMs,
            maxFrameBytes: this.#options.maxFrameBytes,
          });
          this.#connections.add(connection);
          connection.onClosed(() => {
            this.#connections.delete(connection);
            this.#logger.info({ workerId, connectionId: connection.id }, 'worker disconnected');
          });
          connection.attach();
          this.#logger.info({ workerId, connectionId: connection.id, apiVersion: url.searchParams.get('api_version') }, 'worker connected');
          this.#options.onConnection?.(connection);
        });
      },
      (error: unknown) => {
        this.#logger.warn({ err: error }, 'socket refused: bad token');
        refuse(socket, 401, 'Unauthorized');
      },
    );
  }

  /** Closes every connection; resolves once all are closed. Repeated calls share one promise. */
  close(forceAfterMs = 2_000): Promise<void> {
    const current = this.#state.current;
    if (current.kind === 'closing') return current.done;
    if (current.kind === 'closed') return Promise.resolve();
    // The close starts a microtask later, once the state says closing: no upgrade is accepted meanwhile.
    const done = Promise.resolve()
      .then(() => this.#closeAll(forceAfterMs))
      .then(() => {
        this.#state.to({ kind: 'closed' });
      });
    this.#state.to({ kind: 'closing', done });
    return done;
  }

  async #closeAll(forceAfterMs: number): Promise<void> {
    const waits = [...this.#connections].map(
      (connection) =>
        new Promise<void>((resolve) => {
          if (connection.state === 'closed') {
            resolve();
            return;
          }
          connection.onClosed(resolve);
          connection.close();
        }),
    );
    let timer: NodeJS.Timeout | undefined;
    const forced = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        for (const connection of this.#connections) connection.terminate();
        resolve();
      }, forceAfterMs);
    });
    await Promise.race([Promise.all(waits), forced]);
    clearTimeout(timer);
    for (const connection of this.#connections) connection.terminate();
    await new Promise<void>((resolve) => this.#wss.close(() => resolve()));
  }
}

function refuse(socket: Duplex, status: number, text: string): void {
  if (socket.destroyed) return;
  socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
}
