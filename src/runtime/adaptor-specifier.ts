/**
 * Adaptor specifiers as Lightning sends them: `@openfn/language-common@3.3.4`,
 * `@openfn/language-http@latest`, or a bare name meaning latest.
 */
export interface AdaptorSpecifier {
  name: string;
  /** Undefined for a bare name; `latest`/`next` are tags, resolved once per engine lifetime. */
  version: string | undefined;
}

// A scoped or plain npm name, then an optional @version. Anything with shell
// or path characters is refused before it gets near npm.
const SPECIFIER = /^((?:@[a-z0-9][a-z0-9._~-]*\/)?[a-z0-9][a-z0-9._~-]*)(?:@([A-Za-z0-9][A-Za-z0-9.+_-]*))?$/;

export function parseAdaptorSpecifier(specifier: string): AdaptorSpecifier | undefined {
  const match = SPECIFIER.exec(specifier.trim());
  if (!match || match[1] === undefined) return undefined;
  return { name: match[1], version: match[2] };
}

export function isTag(version: string | undefined): boolean {
  return version === undefined || version === 'latest' || version === 'next';
}

/** `*` matches any run of characters; a RegExp is used as is. */
export function compileAllowList(patterns: readonly (string | RegExp)[]): RegExp[] {
  return patterns.map((p) =>
    typeof p === 'string' ? new RegExp(`^${p.split('*').map((part) => part.replace(/[.+?^${}()|[\]\\/]/g, '\\$&')).join('.*')}$`) : p,
  );
}

export function isAllowed(name: string, allowList: readonly RegExp[]): boolean {
  return allowList.some((r) => r.test(name));
}

/** The directory name under `node_modules` for an installed version (the runtime's convention). */
export function aliasFor(name: string, version: string): string {
  return `${name}_${version}`;
}
