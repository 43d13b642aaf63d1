/**
 * The dashboard's three files, built in memory with esbuild the first time a
 * browser asks for them (about a tenth of a second, once per process) and
 * kept: the page shell, one script bundled from `ui/main.ts`, one stylesheet.
 * Nothing is fetched from elsewhere, so the page works offline. The shell
 * holds no run data: everything it shows comes from the JSON API, with the
 * token.
 */
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

export interface DashboardAssets {
  html: string;
  js: string;
  css: string;
}

const UI_DIR = fileURLToPath(new URL('./ui/', import.meta.url));

const HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Lanes</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/dashboard.css">
<script type="module" src="/dashboard.js"></script>
</head>
<body>
<a class="skip" href="#main">Skip to content</a>
<div id="app"><main id="main" tabindex="-1"><p>Loading the dashboard…</p></main></div>
<noscript>The Lanes dashboard needs JavaScript.</noscript>
</body>
</html>
`;

async function buildAssets(): Promise<DashboardAssets> {
  const [script, style] = await Promise.all([
    build({
      entryPoints: [`${UI_DIR}main.ts`],
      bundle: true,
      write: false,
      format: 'esm',
      platform: 'browser',
      target: 'es2022',
      minify: true,
      legalComments: 'none',
      logLevel: 'silent',
    }),
    readFile(`${UI_DIR}styles.css`, 'utf8'),
  ]);
  const js = script.outputFiles[0]?.text;
  if (js === undefined) throw new Error('esbuild wrote no dashboard bundle');
  return { html: HTML, js, css: style };
}

let cached: Promise<DashboardAssets> | undefined;

/** The built files; a failed build is not kept, so the next request tries again. */
export function dashboardAssets(): Promise<DashboardAssets> {
  if (cached === undefined) {
    cached = buildAssets();
    cached.catch(() => {
      cached = undefined;
    });
  }
  return cached;
}
