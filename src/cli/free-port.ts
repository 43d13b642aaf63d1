import { createServer } from 'node:net';

/** The first port from `start` on that can be bound on `host`, trying `tries` ports. */
export async function firstFreePort(start: number, host = '127.0.0.1', tries = 100): Promise<number> {
  for (let port = start; port < start + tries && port <= 65535; port += 1) {
    if (await canBind(port, host)) return port;
  }
  throw new Error(`no free port in ${start}..${start + tries - 1}`);
}

/** Whether `port` can be bound on `host` right now. */
export function canBind(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, host, () => server.close(() => resolve(true)));
  });
}
