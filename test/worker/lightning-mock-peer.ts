/**
 * A stand-in for OpenFn's lightning-mock (packages/lightning-mock in
 * OpenFn/kit), the peer OpenFn's own worker is tested against. It replies the
 * way that mock does, which is not always the way Lightning or `lanes server`
 * do:
 *
 * - every reply is the event `chan_reply_<ref>` (not `phx_reply`);
 * - a join is answered `{status: "ok", response: "ok"}` (a string), and a run
 *   join the mock does not know `{status: "error", response: "invalid_run_id"}`;
 * - `fetch:dataclip` is answered in a JSON frame, the bytes of the UTF-8 JSON
 *   as an array of numbers (`Array.from(Uint8Array)`), not a binary frame;
 * - `run:start`, `step:start` and `run:log` are answered `{status: "ok"}`
 *   with no response at all;
 * - a missing credential is `{errors: {id: ["Credential not found!"]}}`;
 * - `run:complete` is refused when it carries keys the mock does not know.
 *
 * On top, it delays every reply by `replyDelayMs` and counts the events in
 * flight per run channel, so a test can see whether a worker waits for each
 * reply before the next event. With `claimPlans` it plays a Lanes server
 * offering `claim_plans` (plans and inputs in the claim reply; offer it in
 * `queueJoinReply` too), and it can hold or refuse run joins.
 */
import type { ExecutionContext } from 'ava';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer } from 'ws';
import type { WebSocket } from 'ws';

type Frame = [string | null, string | null, string, string, unknown];

export interface MockRun {
  id: string;
  /** The plan as the mock serves it (its `state.runs[id]`). */
  plan: Record<string, unknown>;
}

export interface ReceivedEvent {
  topic: string;
  event: string;
  payload: unknown;
}

export interface MockPeerOptions {
  runs: MockRun[];
  dataclips?: Record<string, unknown>;
  credentials?: Record<string, unknown>;
  replyDelayMs?: number;
  /** Runs handed out per claim, whatever the demand (the mock: 1). More plays a server that over-delivers. */
  runsPerClaim?: number;
  /** A join reply object instead of the mock's `"ok"` for `worker:queue` (to offer Lanes extensions). */
  queueJoinReply?: Record<string, unknown>;
  /** Claim replies carry each run's plan and its input's JSON text (`claim_plans`). */
  claimPlans?: boolean;
  /** Joins of these runs are answered after this long (ms) instead of `replyDelayMs`. */
  runJoinDelaysMs?: Record<string, number>;
  /** Runs whose channel join is refused (`unauthorized`). */
  refuseRunJoins?: string[];
}

export class LightningMockPeer {
  readonly received: ReceivedEvent[] = [];
  /** When each run's join reply was sent (epoch ms), by run id. */
  readonly joinAnsweredAt = new Map<string, number>();
  /** The most events of one run channel that were awaiting their reply at once. */
  maxInFlight = 0;
  readonly #inFlight = new Map<string, number>();
  readonly #queue: MockRun[];
  readonly #pending = new Set<string>();
  readonly #options: MockPeerOptions;
  readonly #sockets = new Set<WebSocket>();
  readonly #http = createServer();
  readonly #wss: WebSocketServer;

  private constructor(options: MockPeerOptions) {
    this.#options = options;
    this.#queue = [...options.runs];
    this.#wss = new WebSocketServer({ server: this.#http, path: '/worker/websocket' });
    this.#wss.on('connection', (ws) => {
      this.#sockets.add(ws);
      ws.on('close', () => this.#sockets.delete(ws));
      ws.on('message', (data) => this.#onFrame(ws, JSON.parse(String(data)) as Frame));
    });
  }

  static async start(t: ExecutionContext, options: MockPeerOptions): Promise<LightningMockPeer> {
    const peer = new LightningMockPeer(options);
    await new Promise<void>((resolve) => peer.#http.listen(0, '127.0.0.1', () => resolve()));
    t.teardown(() => peer.close());
    return peer;
  }

  get url(): string {
    return `ws://127.0.0.1:${(this.#http.address() as AddressInfo).port}/worker`;
  }

  /** Events received on `run:<id>`, in order, joins excluded. */
  eventsOf(runId: string): ReceivedEvent[] {
    return this.received.filter((e) => e.topic === `run:${runId}` && e.event !== 'phx_join' && e.event !== 'phx_leave');
  }

  async close(): Promise<void> {
    for (const ws of this.#sockets) ws.terminate();
    this.#wss.close();
    if (this.#http.listening) await new Promise<void>((resolve) => this.#http.close(() => resolve()));
  }

  #onFrame(ws: WebSocket, [joinRef, ref, topic, event, payload]: Frame): void {
    this.received.push({ topic, event, payload });
    if (topic === 'phoenix') return this.#reply(ws, joinRef, ref, topic, { status: 'ok', response: {} }, 0);
    if (event === 'phx_join') {
      if (topic.startsWith('run:') && !this.#pending.has(topic.slice(4))) {
        return this.#reply(ws, joinRef, ref, topic, { status: 'error', response: 'invalid_run_id' });
      }
      if (topic.startsWith('run:')) {
        const runId = topic.slice(4);
        const refused = this.#options.refuseRunJoins?.includes(runId) === true;
        const reply = refused ? { status: 'error', response: { reason: 'unauthorized' } } : { status: 'ok', response: 'ok' };
        return this.#reply(ws, joinRef, ref, topic, reply, this.#options.runJoinDelaysMs?.[runId], () => this.joinAnsweredAt.set(runId, Date.now()));
      }
      const response = topic === 'worker:queue' && this.#options.queueJoinReply ? this.#options.queueJoinReply : 'ok';
      return this.#reply(ws, joinRef, ref, topic, { status: 'ok', response });
    }
    if (event === 'phx_leave') return this.#reply(ws, joinRef, ref, topic, { status: 'ok', response: {} });
    if (topic === 'worker:queue' && event === 'claim') {
      // The mock hands out one run per claim, whatever the demand.
      const handed = this.#queue.splice(0, this.#options.runsPerClaim ?? 1);
      const runs = handed.map((run) => {
        if (this.#options.claimPlans !== true) return { id: run.id, token: 'x.y.z' };
        const clip = this.#options.dataclips?.[String(run.plan['dataclip_id'])];
        return { id: run.id, token: 'x.y.z', plan: run.plan, ...(clip === undefined ? {} : { dataclip: JSON.stringify(clip) }) };
      });
      for (const run of handed) this.#pending.add(run.id);
      return this.#reply(ws, joinRef, ref, topic, { status: 'ok', response: { runs } });
    }
    if (!topic.startsWith('run:')) return this.#reply(ws, joinRef, ref, topic, { status: 'error', response: `There are no listeners on channel ${topic}` });
    const runId = topic.slice(4);
    const inFlight = (this.#inFlight.get(topic) ?? 0) + 1;
    this.#inFlight.set(topic, inFlight);
    this.maxInFlight = Math.max(this.maxInFlight, inFlight);
    const answer = (reply: { status: string; response?: unknown }): void => this.#reply(ws, joinRef, ref, topic, reply, undefined, () => this.#inFlight.set(topic, (this.#inFlight.get(topic) ?? 1) - 1));
    const body = (payload ?? {}) as Record<string, unknown>;
    switch (event) {
      case 'fetch:plan':
        return answer({ status: 'ok', response: this.#options.runs.find((r) => r.id === runId)?.plan });
      case 'fetch:dataclip': {
        const clip = this.#options.dataclips?.[String(body['id'])];
        if (clip === undefined) return answer({ status: 'error', response: 'not_found' });
        return answer({ status: 'ok', response: Array.from(new TextEncoder().encode(JSON.stringify(clip))) });
      }
      case 'fetch:credential': {
        const credential = this.#options.credentials?.[String(body['id'])];
        if (credential === undefined) return answer({ status: 'error', response: { errors: { id: ['Credential not found!'] } } });
        return answer({ status: 'ok', response: credential });
      }
      case 'run:complete': {
        const { final_dataclip_id: _a, final_state: _b, reason: _c, error_type: _d, error_message: _e, timestamp: _f, ...rest } = body;
        const unexpected = Object.keys(rest);
        if (unexpected.length) return answer({ status: 'error', response: `Unexpected keys: ${unexpected.join(',')}` });
        return answer({ status: 'ok' });
      }
      default:
        return answer({ status: 'ok' });
    }
  }

  #reply(ws: WebSocket, joinRef: string | null, ref: string | null, topic: string, payload: unknown, delayMs = this.#options.replyDelayMs ?? 1, before?: () => void): void {
    setTimeout(() => {
      before?.();
      if (ws.readyState === ws.OPEN) ws.send(JSON.stringify([joinRef, ref, topic, `chan_reply_${ref}`, payload]));
    }, delayMs);
  }
}
