/**
 * How one engine child's resident memory moves over many runs: a pool of
 * one child runs trivial `@openfn/language-common` runs one after another,
 * and every 100 runs (after 1.5 s of rest) the child's resident memory is
 * read from `/proc/PID/smaps`, split by what it maps (docs/memory.md,
 * "Growth over many runs"). The child is recycled after `maxRunsPerChild`
 * (500) runs as in production, so the series shows a fresh child too.
 *
 *   npx node bench/child-growth.ts [runs, default 1000]
 *
 * Not part of `npm run bench`: it measures one child, not the product.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { Engine } from '../src/engine/index.ts';
import type { RunPlan } from '../src/protocol/index.ts';
import { ADAPTOR } from './plans.ts';

const root = fileURLToPath(new URL('../', import.meta.url));
const repoDir = process.env['BENCH_REPO_DIR'] ?? join(root, 'node_modules', '.cache', 'lanes-bench', 'repo');
mkdirSync(repoDir, { recursive: true });

/** Resident MB of a process by what it maps: the node binary, anonymous memory, the malloc heap, other files. */
function residentByKind(pid: number): Record<string, number> {
  const kb: Record<string, number> = {};
  let kind = 'anonymous';
  for (const line of readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    const header = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (header) {
      const name = header[1] ?? '';
      kind = name === '' ? 'anonymous' : name === '[heap]' ? 'malloc heap' : name.startsWith('[') ? 'other' : name.endsWith('/node') ? 'node binary' : 'other files';
      continue;
    }
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (rss) kb[kind] = (kb[kind] ?? 0) + Number(rss[1]);
  }
  return Object.fromEntries(Object.entries(kb).map(([k, v]) => [k, Math.round(v / 1024)]));
}

const runs = Number(process.argv[2] ?? 1000);
const engine = await Engine.create({ poolSize: 1, runMemoryLimitMb: 500, logger: pino({ level: 'silent' }), repoDir, preloadAdaptors: [ADAPTOR] });
const plan: RunPlan = {
  id: 'growth',
  dataclip_id: '',
  starting_node_id: 't',
  triggers: [{ id: 't', type: 'webhook' }],
  jobs: [{ id: 'j', adaptor: ADAPTOR, body: 'fn(state => ({ ...state, data: { at: Date.now() } }));' }],
  edges: [{ id: 'e', source_trigger_id: 't', target_job_id: 'j', condition: 'always' }],
};
try {
  console.log('runs  child pid  resident MB by kind');
  for (let i = 0; i <= runs; i++) {
    if (i > 0) {
      const outcome = await engine.execute({
        runId: `growth-${i}`,
        plan,
        input: {},
        limits: { timeoutMs: 30_000, memoryLimitMb: 500, payloadLimitMb: 10, logPayloadLimitMb: 1, statePropsToRemove: [] },
        fetchCredential: async () => ({}),
        onEvent: () => undefined,
      });
      if (outcome.reason !== 'success') throw new Error(`run ${i} ended ${outcome.reason}: ${outcome.errorMessage ?? ''}`);
    }
    if (i % 100 !== 0) continue;
    await new Promise((resolve) => setTimeout(resolve, 1500));
    for (const pid of engine.childPids()) console.log(`${String(i).padStart(4)}  ${String(pid).padStart(9)}  ${JSON.stringify(residentByKind(pid))}`);
  }
} finally {
  await engine.stop();
}
