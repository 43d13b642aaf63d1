#!/usr/bin/env node
// Lanes needs Node 24 (it runs its TypeScript sources directly). `npx lanes`
// and `npm run` put the project's pinned Node 24 first on PATH; a bare older
// `node` gets a clear message instead of a syntax error.
const major = Number(process.versions.node.split('.')[0]);
if (major < 24) {
  process.stderr.write(`lanes: needs Node.js 24 or later, this is ${process.version}; run it through "npx lanes" or "npm start" in the project, which use the pinned Node 24\n`);
  process.exit(2);
}
await import('../src/cli/main.ts');
