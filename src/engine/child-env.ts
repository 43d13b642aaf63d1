/**
 * The environment of pooled children, built from an allow-list: none of the
 * worker's own variables reach job code or adaptors. `WORKER_*` and `LANES_*`
 * are refused even when listed, so a careless allow-list cannot leak
 * `WORKER_SECRET`.
 */

export const DEFAULT_CHILD_ENV_ALLOW_LIST: readonly string[] = [
  'PATH',
  'HOME',
  'TMPDIR',
  'TMP',
  'TEMP',
  'LANG',
  'LC_ALL',
  'LC_CTYPE',
  'TZ',
  'NODE_EXTRA_CA_CERTS',
  'SSL_CERT_FILE',
  'SSL_CERT_DIR',
  'HTTP_PROXY',
  'HTTPS_PROXY',
  'NO_PROXY',
  'http_proxy',
  'https_proxy',
  'no_proxy',
];

const NEVER = /^(WORKER|LANES)_/;

export function buildChildEnv(
  source: Readonly<Record<string, string | undefined>>,
  allowList: readonly string[],
  extra: Readonly<Record<string, string>> = {},
): Record<string, string> {
  const env: Record<string, string> = {};
  for (const name of allowList) {
    const value = source[name];
    if (value !== undefined && !NEVER.test(name)) env[name] = value;
  }
  for (const [name, value] of Object.entries(extra)) if (!NEVER.test(name)) env[name] = value;
  return env;
}

/** For npm: everything but the worker's own variables (npm needs its config, proxies, auth). */
export function buildNpmEnv(source: Readonly<Record<string, string | undefined>>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(source)) if (value !== undefined && !NEVER.test(name)) env[name] = value;
  return env;
}
