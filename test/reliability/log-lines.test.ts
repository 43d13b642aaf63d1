/**
 * Issue 12, item 6: log lines as an operator reads them. A real worker and
 * the real server go through runs that succeed, fail, and are killed by a
 * shutdown; every JSON line either of them prints names each key once (pino
 * writes a child's binding again when a parent bound it already), and the
 * engine's children going away during the shutdown is not an error with a
 * stack.
 */
import test from 'ava';
import { Writable } from 'node:stream';
import pino from 'pino';
import { startServer, submitRun, waitFor } from '../server/helpers.ts';
import { HOLD_FOR, fixturePlan, getRun, prepareAdaptorRepo, spawnWorker, waitAllTerminal } from './process-cluster.ts';


/** The top-level keys of one JSON object text, in order, repeats included. */
export function topLevelKeys(text: string): string[] {
  const keys: string[] = [];
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const char = text[i];
    if (char === '"') {
      let end = i + 1;
      while (end < text.length && text[end] !== '"') end += text[end] === '\\' ? 2 : 1;
      if (depth === 1 && /^\s*:/.test(text.slice(end + 1, end + 4))) keys.push(JSON.parse(text.slice(i, end + 1)) as string);
      i = end;
    } else if (char === '{' || char === '[') depth++;
    else if (char === '}' || char === ']') depth--;
  }
  return keys;
}

function repeatedKeys(line: string): string[] {
  const keys = topLevelKeys(line);
  return [...new Set(keys.filter((key, index) => keys.indexOf(key) !== index))];
}

test('topLevelKeys sees a repeated key that JSON.parse would hide', (t) => {
  t.deepEqual(topLevelKeys('{"a":1,"b":{"a":2},"c":"x\\"a\\":","a":3}'), ['a', 'b', 'c', 'a']);
  t.deepEqual(repeatedKeys('{"component":"server","component":"api","msg":"x"}'), ['component']);
});

test('no key twice in any worker or server log line; a shutdown that kills runs logs no error with a stack', async (t) => {
  const serverLines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      serverLines.push(...chunk.toString('utf8').split('\n').filter((line) => line.length > 0));
      done();
    },
  });
  const server = await startServer(t, { logger: pino({ level: 'debug' }, sink), leaseMs: 60_000, heartbeatIntervalMs: 300 });
  const repoDir = await prepareAdaptorRepo(t);
  const worker = spawnWorker(t, { lightningUrl: server.workerUrl, workloops: 'fast_lane:1 manual>*:2', repoDir, extraArgs: ['--shutdown-timeout-seconds', '1'] });
  await worker.waitForLog('joined worker:queue');

  const finished = await Promise.all([
    submitRun(server, { queue: 'fast_lane', plan: fixturePlan('fn(state => state)') }),
    submitRun(server, { queue: 'manual', plan: fixturePlan('fn(() => { throw new Error("the job fails") })') }),
  ]);
  await waitAllTerminal(server, finished);
  const held = await submitRun(server, { queue: 'manual', plan: fixturePlan(HOLD_FOR), input: { holdMs: 60_000 } });
  await waitFor(async () => (await getRun(server, held)).state === 'started', { timeoutMs: 20_000, message: 'the long run started' });
  const beforeStop = worker.rawLines.length;
  worker.child.kill('SIGTERM');
  t.deepEqual(await worker.exited, { code: 0, signal: null });
  t.is((await getRun(server, held)).error_type, 'ShutdownError');

  for (const [who, lines] of [['worker', worker.rawLines], ['server', serverLines]] as const) {
    t.true(lines.length > 10, `${who} logged`);
    for (const line of lines) t.deepEqual(repeatedKeys(line), [], `${who} line with a repeated key: ${line}`);
  }
  const shutdownLines = worker.rawLines.slice(beforeStop).map((line) => JSON.parse(line) as { level: number; msg: string });
  const errors = shutdownLines.filter((line) => line.level >= 50);
  t.deepEqual(errors, [], 'no error during the shutdown');
  t.false(worker.rawLines.slice(beforeStop).some((line) => line.includes('"stack"')), 'no stack during the shutdown');
});
