/**
 * Where a warm pooled child's memory goes (docs/memory.md): one engine child
 * at a time, idle, in several set-ups, each measured from outside
 * (`/proc/PID/smaps`: resident and proportional memory, split by mapping:
 * the node binary and other files, the malloc heap, anonymous memory) and
 * from inside (V8's heap of the child's main thread and of each of its
 * threads, through bench/child-memory-probe.mjs loaded with `--import`).
 *
 *   npx node bench/child-memory.ts
 *
 * Not part of `npm run bench`: it measures one child, not the product.
 */
import { readFileSync } from 'node:fs';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { Engine } from '../src/engine/index.ts';
import type { EngineOptions, RunRequest } from '../src/engine/index.ts';
import type { RunPlan } from '../src/protocol/index.ts';

const ADAPTOR = '@openfn/language-common@3.3.4';
const PROBE = fileURLToPath(new URL('./child-memory-probe.mjs', import.meta.url));
const root = fileURLToPath(new URL('../', import.meta.url));
const repoDir = process.env['BENCH_REPO_DIR'] ?? join(root, 'node_modules', '.cache', 'lanes-bench', 'repo');
mkdirSync(repoDir, { recursive: true });

interface Smaps {
  rssKb: number;
  pssKb: number;
  privateDirtyKb: number;
  /** Resident pages by what they map. */
  byKind: Record<string, { rssKb: number; pssKb: number }>;
}

function smaps(pid: number): Smaps {
  const text = readFileSync(`/proc/${pid}/smaps`, 'utf8');
  const result: Smaps = { rssKb: 0, pssKb: 0, privateDirtyKb: 0, byKind: {} };
  let kind = 'anonymous';
  for (const line of text.split('\n')) {
    const header = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (header) {
      const name = header[1] ?? '';
      kind = name === '' ? 'anonymous' : name === '[heap]' ? 'malloc heap' : name.startsWith('[') ? name : name.endsWith('/node') ? 'node binary' : 'other files';
      continue;
    }
    const field = /^(Rss|Pss|Private_Dirty):\s+(\d+) kB/.exec(line);
    if (!field) continue;
    const kb = Number(field[2]);
    const entry = (result.byKind[kind] ??= { rssKb: 0, pssKb: 0 });
    if (field[1] === 'Rss') {
      result.rssKb += kb;
      entry.rssKb += kb;
    } else if (field[1] === 'Pss') {
      result.pssKb += kb;
      entry.pssKb += kb;
    } else result.privateDirtyKb += kb;
  }
  return result;
}

const plan: RunPlan = {
  id: 'p',
  dataclip_id: 'd',
  starting_node_id: 't',
  triggers: [{ id: 't' }],
  jobs: [{ id: 'j', adaptor: ADAPTOR, body: 'fn(state => ({ ...state, data: { ok: true } }));' }],
  edges: [{ id: 'e', source_trigger_id: 't', target_job_id: 'j', condition: 'always' }],
};

function request(runId: string): RunRequest {
  return {
    runId,
    plan,
    input: { data: {} },
    limits: { timeoutMs: 60_000, memoryLimitMb: 500, payloadLimitMb: 10, logPayloadLimitMb: 1, statePropsToRemove: [] },
    fetchCredential: () => Promise.reject(new Error('none')),
    onEvent: () => undefined,
  };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function measure(label: string, options: Partial<EngineOptions>, runFirst: boolean, env: Record<string, string> = {}): Promise<void> {
  const probes: unknown[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (!line.includes('LANES_PROBE')) continue;
        const entry = JSON.parse(line) as { output?: string };
        for (const m of (entry.output ?? '').matchAll(/LANES_PROBE (\{.*\})/g)) probes.push(JSON.parse(m[1] ?? '{}'));
      }
      done();
    },
  });
  const engine = await Engine.create({
    poolSize: 1,
    repoDir,
    logger: pino({ level: 'debug' }, stream),
    childEnv: { NODE_OPTIONS: `--import=${PROBE}`, ...env },
    extraReadPaths: [PROBE],
    ...options,
  });
  try {
    if (runFirst) await engine.execute(request('r1'));
    const deadline = Date.now() + 60_000;
    while (options.warmSpares !== false && !engine.stats().children.every((c) => c.spareReady)) {
      if (Date.now() > deadline) throw new Error('spare did not boot');
      await sleep(100);
    }
    await sleep(Number(process.env['SETTLE_MS'] ?? 3000));
    const pid = engine.childPids()[0];
    if (pid === undefined) throw new Error('no child');
    const s = smaps(pid);
    process.kill(pid, 'SIGUSR2');
    await sleep(1500);
    const kinds = Object.entries(s.byKind)
      .sort((a, b) => b[1].rssKb - a[1].rssKb)
      .slice(0, 5)
      .map(([k, v]) => `${k} ${Math.round(v.rssKb / 1024)}/${Math.round(v.pssKb / 1024)}`)
      .join(', ');
    process.stdout.write(`\n## ${label}\nRSS ${Math.round(s.rssKb / 1024)} MB, PSS ${Math.round(s.pssKb / 1024)} MB, private dirty ${Math.round(s.privateDirtyKb / 1024)} MB; by mapping (RSS/PSS MB): ${kinds}\n`);
    for (const probe of probes) process.stdout.write(`  V8 ${JSON.stringify(probe)}\n`);
  } finally {
    await engine.stop();
  }
}

const preload = { preloadAdaptors: [ADAPTOR] };
const only = process.argv[2];
const setups: Array<[string, Partial<EngineOptions>, boolean, Record<string, string>?]> = [
  ['no warm thread', { warmSpares: false }, false],
  ['warm thread, no adaptor', {}, false],
  ['warm thread with language-common', preload, false],
  ['warm thread with language-common, after one run', preload, true],
  ['same, MALLOC_ARENA_MAX=2', preload, true, { MALLOC_ARENA_MAX: '2' }],
];
for (const [label, options, runFirst, env] of setups) {
  if (only !== undefined && !label.includes(only)) continue;
  await measure(label, options, runFirst, env);
}
