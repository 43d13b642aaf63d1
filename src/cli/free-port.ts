import { createServer } from 'node:net';

/**
 * The ports the Fetch standard calls bad: browsers and Node's `fetch` refuse
 * to connect to them, so a port picked for a server that a browser or a
 * health check must reach is never one of them (a bench run once waited 60 s
 * for a worker's `/readyz` on 6666).
 */
export const FETCH_BAD_PORTS: ReadonlySet<number> = new Set([
  1, 7, 9, 11, 13, 15, 17, 19, 20, 21, 22, 23, 25, 37, 42, 43, 53, 69, 77, 79, 87, 95, 101, 102, 103, 104, 109, 110, 111, 113, 115, 117, 119, 123, 135, 137,
  139, 143, 161, 179, 389, 427, 465, 512, 513, 514, 515, 526, 530, 531, 532, 540, 548, 554, 556, 563, 587, 601, 636, 989, 990, 993, 995, 1719, 1720, 1723,
  2049, 3659, 4045, 4190, 5060, 5061, 6000, 6566, 6665, 6666, 6667, 6668, 6669, 6679, 6697, 10080,
]);

/** The first port from `start` on that can be bound on `host` and is not a bad port for `fetch`, trying `tries` ports. */
export async function firstFreePort(start: number, host = '127.0.0.1', tries = 100): Promise<number> {
  for (let port = start; port < start + tries && port <= 65535; port += 1) {
    if (FETCH_BAD_PORTS.has(port)) continue;
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
