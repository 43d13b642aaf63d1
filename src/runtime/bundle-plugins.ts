/**
 * esbuild plugins for the bundles a run thread loads:
 *
 * - `stubPlugin` replaces modules a run never uses (thread-stubs.ts);
 * - `builtinsPlugin` turns `import … from 'node:x'` into the builtin's
 *   exports taken through `process.getBuiltinModule`, so a bundle has no
 *   static import left: the thread's loader (engine/thread-boot.ts) compiles
 *   it as a `vm.SourceTextModule` with its code cache and links it without a
 *   module loader. (It does not make loading a builtin cheaper: Node builds
 *   a builtin's ES facade for `require` and `getBuiltinModule` too.)
 */
import { builtinModules } from 'node:module';
import path from 'node:path';
import type { Plugin } from 'esbuild';
import type { ModuleStub } from './thread-stubs.ts';

/** The package a file belongs to: the name after the last `node_modules/` in its path, or undefined outside one. */
export function packageOf(filePath: string): string | undefined {
  const marker = `${path.sep}node_modules${path.sep}`;
  const at = filePath.lastIndexOf(marker);
  if (at < 0) return undefined;
  const parts = filePath.slice(at + marker.length).split(path.sep);
  return parts[0]?.startsWith('@') ? `${parts[0]}/${parts[1] ?? ''}` : parts[0];
}

const escapeRegExp = (text: string): string => text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

const STUB_NAMESPACE = 'lanes-stub';

/** Replaces each stub's module, where its importer imports it, with the stub's source. */
export function stubPlugin(stubs: readonly ModuleStub[]): Plugin {
  const filter = new RegExp(`^(${stubs.map((s) => escapeRegExp(s.specifier)).join('|')})$`);
  return {
    name: 'lanes-stubs',
    setup(build) {
      build.onResolve({ filter }, (args) => {
        const importer = packageOf(args.importer);
        const index = stubs.findIndex((s) => s.specifier === args.path && s.importer === importer);
        return index < 0 ? undefined : { path: `${index}:${args.path}`, namespace: STUB_NAMESPACE };
      });
      build.onLoad({ filter: /.*/, namespace: STUB_NAMESPACE }, (args) => {
        const stub = stubs[Number(args.path.slice(0, args.path.indexOf(':')))];
        return { contents: stub?.contents ?? '', loader: 'js' };
      });
    },
  };
}

const BUILTIN_NAMESPACE = 'lanes-builtin';
const BUILTINS = new Set(builtinModules);

/** Static imports of Node builtins become a CommonJS module holding `process.getBuiltinModule(name)`. */
export function builtinsPlugin(): Plugin {
  return {
    name: 'lanes-builtins',
    setup(build) {
      build.onResolve({ filter: /^[a-z_:/0-9]+$/ }, (args) => {
        if (args.kind !== 'import-statement') return undefined;
        const name = args.path.startsWith('node:') ? args.path.slice('node:'.length) : args.path;
        // `node:test`, `node:sqlite` … exist only with the prefix; none of them is in builtinModules.
        if (!BUILTINS.has(name)) return undefined;
        return { path: name, namespace: BUILTIN_NAMESPACE };
      });
      build.onLoad({ filter: /.*/, namespace: BUILTIN_NAMESPACE }, (args) => ({
        contents: `module.exports = process.getBuiltinModule(${JSON.stringify(`node:${args.path}`)});\n`,
        loader: 'js',
      }));
    },
  };
}
