/**
 * The client side of presigned-claim.ts, in a worker thread of its own so
 * that the servers' work and the client's (hearing the push, claiming) run in
 * parallel, as a server and a worker in two processes do. For each side it
 * joins `worker:queue` as a one-lane worker; then, per run, it submits over
 * HTTP and claims the moment `work-available` arrives, and reports submit →
 * claimed and the claim's round trip to the parent. Each round of runs
 * follows a pause of `gapMs`, the quiet in which a server refills its pool of
 * pre-signed run identities.
 */
import { performance } from 'node:perf_hooks';
import { parentPort, workerData } from 'node:worker_threads';
import { Socket } from 'phoenix';
import type { Channel } from 'phoenix';
import WebSocket from 'ws';
import { API_VERSION, CLAIM, WORK_AVAILABLE, WORKER_QUEUE_TOPIC } from '../src/protocol/index.ts';
import type { ClaimReply } from '../src/protocol/index.ts';

export interface ClientSide {
  url: string;
  workerUrl: string;
  workerToken: string;
}

export interface ClientInput {
  sides: ClientSide[];
  apiToken: string;
  warmup: number;
  runs: number;
  /** Pause before each round (one run per side). */
  gapMs: number;
}

/** Per side: submit → claimed and the claim round trip, in ms, one entry per measured run. */
export interface ClientOutput {
  submitMs: number[][];
  claimMs: number[][];
}

const PLAN = { jobs: [{ id: 'job-1', body: 'fn(state => state)', adaptor: '@openfn/language-common@latest' }] };

async function join(side: ClientSide): Promise<{ socket: Socket; channel: Channel }> {
  const socket = new Socket(side.workerUrl, {
    transport: WebSocket,
    params: { token: side.workerToken, api_version: API_VERSION, worker_version: 'bench' },
    reconnectAfterMs: () => 60_000,
  });
  socket.connect();
  const channel = socket.channel(WORKER_QUEUE_TOPIC, { capacity: 1, queues: { 'manual>*': 1 } });
  await new Promise<void>((resolve, reject) => {
    channel.join().receive('ok', () => resolve()).receive('error', reject).receive('timeout', () => reject(new Error('join timed out')));
  });
  return { socket, channel };
}

async function oneRun(side: ClientSide, channel: Channel, apiToken: string): Promise<{ submitMs: number; claimMs: number }> {
  const submitted = performance.now();
  const claimed = new Promise<{ submitMs: number; claimMs: number }>((resolve, reject) => {
    const ref = channel.on(WORK_AVAILABLE, () => {
      channel.off(WORK_AVAILABLE, ref);
      const sent = performance.now();
      channel
        .push(CLAIM, { demand: 1, queues: ['manual', '*'], worker_name: 'bench' })
        .receive('ok', (reply: ClaimReply) => {
          const now = performance.now();
          if (reply.runs.length !== 1) reject(new Error(`claim brought ${reply.runs.length} runs`));
          else resolve({ submitMs: now - submitted, claimMs: now - sent });
        })
        .receive('error', reject)
        .receive('timeout', () => reject(new Error('claim timed out')));
    });
  });
  const response = await fetch(`${side.url}/api/runs`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${apiToken}` },
    body: JSON.stringify({ queue: 'manual', plan: PLAN }),
  });
  if (response.status !== 201) throw new Error(`submit answered ${response.status}`);
  await response.text();
  return claimed;
}

async function main(input: ClientInput): Promise<ClientOutput> {
  const joined = await Promise.all(input.sides.map(join));
  const output: ClientOutput = { submitMs: input.sides.map(() => []), claimMs: input.sides.map(() => []) };
  for (let i = 0; i < input.warmup + input.runs; i += 1) {
    await new Promise((resolve) => setTimeout(resolve, input.gapMs));
    // Alternate which side goes first, so neither always follows the other's garbage.
    const order = input.sides.map((_, index) => index);
    if (i % 2 === 1) order.reverse();
    for (const index of order) {
      const side = input.sides[index]!;
      const measured = await oneRun(side, joined[index]!.channel, input.apiToken);
      if (i < input.warmup) continue;
      output.submitMs[index]!.push(measured.submitMs);
      output.claimMs[index]!.push(measured.claimMs);
    }
  }
  for (const { socket } of joined) socket.disconnect();
  return output;
}

if (parentPort !== null) {
  const port = parentPort;
  main(workerData as ClientInput).then(
    (output) => port.postMessage({ ok: true, output }),
    (error: unknown) => port.postMessage({ ok: false, error: String(error) }),
  );
}
