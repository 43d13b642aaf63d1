#!/usr/bin/env node
// Lanes needs Node 24 (it runs its TypeScript sources directly). `npx lanes`
// and `npm run` put the project's pinned Node 24 first on PATH. Started by an
// older `node` (a system Node, a service manager's ExecStart), this file runs
// itself again on the pinned binary in node_modules/node, forwards every
// signal it gets to that process and exits with its code; without the pinned
// binary it says what to do instead of failing on a syntax error.
import { existsSync } from 'node:fs';

const major = Number(process.versions.node.split('.')[0]);
if (major < 24) {
  const { fileURLToPath } = await import('node:url');
  const pinned = fileURLToPath(new URL('../node_modules/node/bin/node', import.meta.url));
  if (!existsSync(pinned)) {
    process.stderr.write(`lanes: needs Node.js 24 or later, this is ${process.version}; run "npm ci" in the project (it installs the pinned Node 24), or use a Node 24\n`);
    process.exit(2);
  }
  await reexec(pinned, fileURLToPath(import.meta.url));
} else {
  // V8's compile cache (code and stripped TypeScript) halves start-up: about 0.3 s to
  // 0.16 s here. It lives in the package's own node_modules/.cache, not the shared
  // temp dir, so no other user can plant code in it; when that directory is not
  // writable Node just runs without it. Pooled children never use it: under the
  // permission model they may not write, and they load only bundled code per run.
  const { enableCompileCache } = await import('node:module');
  const { fileURLToPath } = await import('node:url');
  enableCompileCache?.(fileURLToPath(new URL('../node_modules/.cache/lanes-compile/', import.meta.url)));
  await import('../src/cli/main.ts');
}

/**
 * Runs `lanes` again on `node`. The real process gets its own process group,
 * so a signal sent to this one's group (Ctrl-C, `kill -TERM -PGID`) reaches
 * it once, through this forwarding, and never twice (a second signal would
 * force its stop). It still dies with this process: it treats the IPC
 * channel closing as a SIGTERM (main.ts).
 */
async function reexec(node, script) {
  const { spawn } = await import('node:child_process');
  const child = spawn(node, [script, ...process.argv.slice(2)], { stdio: ['inherit', 'inherit', 'inherit', 'ipc'], detached: true });
  const forwarded = ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGQUIT', 'SIGUSR2', 'SIGWINCH'];
  for (const signal of forwarded) process.on(signal, () => child.kill(signal));
  child.on('error', (error) => {
    process.stderr.write(`lanes: cannot start ${node}: ${error.message}\n`);
    process.exit(1);
  });
  child.on('exit', (code, signal) => {
    if (signal === null) process.exit(code ?? 1);
    // Die of the same signal, so a supervisor sees what the real process saw.
    for (const name of forwarded) process.removeAllListeners(name);
    process.kill(process.pid, signal);
  });
}
