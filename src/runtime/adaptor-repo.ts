/**
 * Adaptors installed on demand with npm into the repo directory.
 *
 * Each version lives under `node_modules/<name>_<version>` (npm aliases, the
 * same layout @openfn/runtime's own repo uses), so several versions coexist.
 * Installs are deduplicated per name@version (concurrent runs wait for the
 * same promise) and serialised across versions, because two npm processes in
 * one directory corrupt each other's tree. `latest`/`next` are resolved once
 * per repo lifetime: a worker does not silently change versions mid-flight.
 */
import { execFile } from 'node:child_process';
import { mkdir, open, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { AdaptorError } from './adaptor-error.ts';
import { aliasFor, compileAllowList, isAllowed, isTag, parseAdaptorSpecifier } from './adaptor-specifier.ts';
import { BUNDLE_FIRST_LINE, bundleSource, fileExists, writeBundle } from './bundle.ts';
import { codeCachePath } from './code-cache.ts';
import { writeCodeCaches } from './code-cache-writer.ts';

export interface ResolvedAdaptor {
  /** `name@version`, with the version resolved. */
  specifier: string;
  name: string;
  version: string;
  /** The installed package directory. */
  root: string;
  /** Absolute path of the ES module to import: the adaptor's bundle, or its own entry point. */
  entryPath: string;
  /** Absolute path of the package's own ES module entry point. */
  sourceEntryPath: string;
}

export interface AdaptorRepoOptions {
  repoDir: string;
  /** Package names that may be installed; `*` is a wildcard. Default `@openfn/language-*`. */
  allowList?: readonly (string | RegExp)[];
  logger: Logger;
  /** The npm executable. Default `npm` from PATH. */
  npmCommand?: string;
  /** Environment for npm (never the worker's secrets: the engine filters it). */
  env?: Readonly<Record<string, string | undefined>>;
  /** Package name → local directory or tarball, installed instead of the registry version (tests, offline sites). */
  localAdaptors?: Readonly<Record<string, string>>;
  installTimeoutMs?: number;
  /** Bundle each adaptor into one module (bundle.ts) and import that. Default true. */
  bundle?: boolean;
}

export const DEFAULT_ADAPTOR_ALLOW_LIST: readonly string[] = ['@openfn/language-*'];

const REPO_PACKAGE = {
  name: 'lanes-adaptor-repo',
  private: true,
  description: 'Adaptors installed on demand by the Lanes engine',
  dependencies: {},
};

export class AdaptorRepo {
  readonly repoDir: string;
  readonly #allowList: RegExp[];
  readonly #logger: Logger;
  readonly #npm: string;
  readonly #env: Readonly<Record<string, string | undefined>> | undefined;
  readonly #localAdaptors: Readonly<Record<string, string>>;
  readonly #installTimeoutMs: number;
  readonly #bundle: boolean;
  readonly #tags = new Map<string, Promise<string>>();
  readonly #installs = new Map<string, Promise<ResolvedAdaptor>>();
  /** Code caches being written, by bundle path. */
  readonly #cacheWrites = new Map<string, Promise<void>>();
  /** Every npm invocation waits for the previous one. */
  #npmChain: Promise<unknown> = Promise.resolve();

  private constructor(options: AdaptorRepoOptions) {
    this.repoDir = path.resolve(options.repoDir);
    this.#allowList = compileAllowList(options.allowList ?? DEFAULT_ADAPTOR_ALLOW_LIST);
    this.#logger = options.logger;
    this.#npm = options.npmCommand ?? 'npm';
    this.#env = options.env;
    this.#localAdaptors = options.localAdaptors ?? {};
    this.#installTimeoutMs = options.installTimeoutMs ?? 300_000;
    this.#bundle = options.bundle ?? true;
  }

  /** Where bundles of adaptors and of the engine's thread code are kept (readable by children, like the repo). */
  get bundlesDir(): string {
    return path.join(this.repoDir, '.lanes-bundles');
  }

  static async create(options: AdaptorRepoOptions): Promise<AdaptorRepo> {
    const repo = new AdaptorRepo(options);
    await mkdir(repo.repoDir, { recursive: true });
    const pkgPath = path.join(repo.repoDir, 'package.json');
    try {
      await readFile(pkgPath, 'utf8');
    } catch {
      await writeFile(pkgPath, JSON.stringify(REPO_PACKAGE, null, 2));
    }
    return repo;
  }

  /** True when the name may be installed at all. */
  allows(name: string): boolean {
    return isAllowed(name, this.#allowList);
  }

  /**
   * Resolves a specifier to an installed adaptor, installing it when needed.
   * Rejects with `AdaptorError` when the adaptor is not allowed or cannot be
   * installed; a failed install is retried by the next call.
   */
  async resolve(specifier: string): Promise<ResolvedAdaptor> {
    const parsed = parseAdaptorSpecifier(specifier);
    if (!parsed) throw new AdaptorError(specifier, `invalid adaptor specifier ${JSON.stringify(specifier)}`);
    if (!this.allows(parsed.name)) {
      throw new AdaptorError(specifier, `adaptor ${parsed.name} is not on the adaptor allow-list`);
    }
    const version = isTag(parsed.version) ? await this.#resolveTag(parsed.name, parsed.version ?? 'latest') : (parsed.version as string);
    const key = `${parsed.name}@${version}`;
    let pending = this.#installs.get(key);
    if (!pending) {
      pending = this.#ensureInstalled(parsed.name, version);
      this.#installs.set(key, pending);
      pending.catch(() => this.#installs.delete(key));
    }
    return pending;
  }

  async #resolveTag(name: string, tag: string): Promise<string> {
    const key = `${name}@${tag}`;
    let pending = this.#tags.get(key);
    if (!pending) {
      pending = this.#lookupTag(name, tag);
      this.#tags.set(key, pending);
      pending.catch(() => this.#tags.delete(key));
    }
    return pending;
  }

  async #lookupTag(name: string, tag: string): Promise<string> {
    const local = this.#localAdaptors[name];
    if (local) {
      const pkg = await readPackageJson(local.endsWith('.tgz') ? undefined : local);
      if (pkg?.version) return pkg.version;
    }
    try {
      const stdout = await this.#runNpm(['view', `${name}@${tag}`, 'version'], 60_000);
      const version = stdout.trim().split('\n').pop()?.replace(/['"]/g, '').trim();
      if (!version) throw new Error('npm view printed no version');
      this.#logger.info({ adaptor: name, tag, version }, 'adaptor tag resolved');
      return version;
    } catch (error) {
      throw new AdaptorError(`${name}@${tag}`, `could not resolve ${name}@${tag}: ${describe(error)}`, { cause: error });
    }
  }

  async #ensureInstalled(name: string, version: string): Promise<ResolvedAdaptor> {
    const alias = aliasFor(name, version);
    const root = path.join(this.repoDir, 'node_modules', alias);
    const local = this.#localAdaptors[name];
    const existing = await entryOf(name, version, root);
    // A local adaptor's code may have changed since its bundle was built; a registry version cannot.
    if (existing) return this.#withBundle(existing, alias, Boolean(local));

    const source = local ? `file:${path.resolve(local)}` : `npm:${name}@${version}`;
    const started = performance.now();
    this.#logger.info({ adaptor: `${name}@${version}` }, 'adaptor install started');
    try {
      await this.#runNpm(
        ['install', '--no-audit', '--no-fund', '--ignore-scripts', '--loglevel=error', `${alias}@${source}`],
        this.#installTimeoutMs,
      );
    } catch (error) {
      throw new AdaptorError(`${name}@${version}`, `could not install ${name}@${version}: ${describe(error)}`, { cause: error });
    }
    const installed = await entryOf(name, version, root);
    if (!installed) throw new AdaptorError(`${name}@${version}`, `${name}@${version} was installed but has no loadable entry point`);
    this.#logger.info({ adaptor: installed.specifier, ms: Math.round(performance.now() - started) }, 'adaptor installed');
    return this.#withBundle(installed, alias, true);
  }

  /**
   * Points the adaptor at its bundle, building it unless `rebuild` is false
   * and one of the current format exists, and writes its code cache
   * (code-cache.ts) when it has none. An adaptor that esbuild cannot bundle
   * is loaded file by file: slower, never broken; a bundle without a code
   * cache compiles in every thread, as before caches.
   */
  async #withBundle(adaptor: ResolvedAdaptor, alias: string, rebuild: boolean): Promise<ResolvedAdaptor> {
    if (!this.#bundle) return adaptor;
    const bundlePath = path.join(this.bundlesDir, 'adaptors', `${alias}.js`);
    if (rebuild || !(await isCurrentBundle(bundlePath))) {
      const started = performance.now();
      try {
        await writeBundle(this.bundlesDir, bundlePath, await bundleSource(adaptor.sourceEntryPath, { builtinsAsExports: true }));
      } catch (error) {
        this.#logger.warn({ adaptor: adaptor.specifier, err: describe(error) }, 'adaptor not bundled, loading it file by file');
        return adaptor;
      }
      this.#logger.info({ adaptor: adaptor.specifier, ms: Math.round(performance.now() - started) }, 'adaptor bundled');
      await rm(codeCachePath(bundlePath), { force: true });
    }
    this.writeCodeCache(adaptor.specifier, bundlePath);
    return { ...adaptor, entryPath: bundlePath };
  }

  /**
   * Writes the code cache of the bundle at `bundlePath` (code-cache.ts) in
   * the background, unless it has one or one is being written: nothing waits
   * for it, and threads booted before it is there compile the bundle as
   * without one. `label` names the bundle in the warning when it fails.
   */
  writeCodeCache(label: string, bundlePath: string): void {
    if (this.#cacheWrites.has(bundlePath)) return;
    const writing = fileExists(codeCachePath(bundlePath))
      .then((exists) => (exists ? undefined : writeCodeCaches([bundlePath])))
      .catch((error: unknown) => {
        this.#logger.warn({ bundle: label, err: describe(error) }, 'bundle has no code cache, threads compile it');
      })
      .finally(() => this.#cacheWrites.delete(bundlePath));
    this.#cacheWrites.set(bundlePath, writing);
  }

  /** Settles when no code cache is being written (the engine waits for it when it stops). */
  async codeCachesWritten(): Promise<void> {
    while (this.#cacheWrites.size > 0) await Promise.all(this.#cacheWrites.values());
  }

  #runNpm(args: string[], timeoutMs: number): Promise<string> {
    const run = this.#npmChain.then(
      () =>
        new Promise<string>((resolve, reject) => {
          execFile(
            this.#npm,
            args,
            { cwd: this.repoDir, env: this.#env as NodeJS.ProcessEnv | undefined, timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 },
            (error, stdout, stderr) => {
              if (error) {
                const detail = String(stderr).split('\n').filter((l) => l.trim()).slice(0, 4).join(' | ');
                reject(new Error(detail || error.message, { cause: error }));
              } else resolve(String(stdout));
            },
          );
        }),
    );
    this.#npmChain = run.catch(() => undefined);
    return run;
  }
}

interface PackageJson {
  name?: string;
  version?: string;
  main?: string;
  module?: string;
  exports?: unknown;
}

async function readPackageJson(dir: string | undefined): Promise<PackageJson | undefined> {
  if (!dir) return undefined;
  try {
    return JSON.parse(await readFile(path.join(dir, 'package.json'), 'utf8')) as PackageJson;
  } catch {
    return undefined;
  }
}

/** The ES module entry of a package: `exports["."]` (import/default), `module`, `main`, `index.js`. */
export function entryFromPackage(pkg: PackageJson): string {
  const pick = (value: unknown): string | undefined => {
    if (typeof value === 'string') return value;
    if (typeof value === 'object' && value !== null) {
      const v = value as Record<string, unknown>;
      return pick(v['.']) ?? pick(v['import']) ?? pick(v['default']) ?? pick(v['node']);
    }
    return undefined;
  };
  return pick(pkg.exports) ?? pkg.module ?? pkg.main ?? 'index.js';
}

async function entryOf(name: string, version: string, root: string): Promise<ResolvedAdaptor | undefined> {
  const pkg = await readPackageJson(root);
  if (!pkg) return undefined;
  const entryPath = path.resolve(root, entryFromPackage(pkg));
  return { specifier: `${name}@${version}`, name, version: pkg.version ?? version, root, entryPath, sourceEntryPath: entryPath };
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Whether the file at `bundlePath` is a bundle this version writes: its first
 * line is the current one. An older bundle (static imports of builtins, which
 * the thread's loader cannot link) is built again.
 */
async function isCurrentBundle(bundlePath: string): Promise<boolean> {
  let handle;
  try {
    handle = await open(bundlePath, 'r');
  } catch {
    return false;
  }
  try {
    const expected = Buffer.from(BUNDLE_FIRST_LINE);
    const head = Buffer.alloc(expected.length);
    const { bytesRead } = await handle.read(head, 0, head.length, 0);
    return bytesRead === head.length && head.equals(expected);
  } finally {
    await handle.close();
  }
}
