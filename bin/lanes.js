#!/usr/bin/env node
// Lanes needs Node 24 (it runs its TypeScript sources directly). `npx lanes`
// and `npm run` put the project's pinned Node 24 first on PATH; a bare older
// `node` gets a clear message instead of a syntax error.
const major = Number(process.versions.node.split('.')[0]);
if (major < 24) {
  process.stderr.write(`lanes: needs Node.js 24 or later, this is ${process.version}; run it through "npx lanes" or "npm start" in the project, which use the pinned Node 24\n`);
  process.exit(2);
}
// V8's compile cache (code and stripped TypeScript) halves start-up: about 0.3 s to
// 0.16 s here. It lives in the package's own node_modules/.cache, not the shared
// temp dir, so no other user can plant code in it; when that directory is not
// writable Node just runs without it. Pooled children never use it: under the
// permission model they may not write, and they load only bundled code per run.
const { enableCompileCache } = await import('node:module');
const { fileURLToPath } = await import('node:url');
enableCompileCache?.(fileURLToPath(new URL('../node_modules/.cache/lanes-compile/', import.meta.url)));
await import('../src/cli/main.ts');
