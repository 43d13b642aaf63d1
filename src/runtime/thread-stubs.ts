/**
 * Modules the run-thread bundle replaces with a few lines, because a run never
 * uses them but every fresh thread would pay to load them (docs/engine.md,
 * "Bundled thread code"). They come in through @openfn/logger and
 * @openfn/runtime, whose other parts a run does use:
 *
 * - `@inquirer/confirm` (with @inquirer/core, readline, mute-stream, spinners,
 *   two more copies of chalk): the logger's interactive `confirm()`. A run
 *   thread has no terminal; the stub rejects.
 * - `chalk`: the logger colours only its pretty output; a thread's loggers
 *   write JSON, and without a TTY chalk paints nothing anyway. The stub
 *   returns the text unpainted.
 * - `source-map`: the runtime maps error positions only for a job that
 *   carries a source map, which Lanes never passes. The stub refuses.
 * - `child_process`: the runtime's autoinstall runs `npm`; Lanes installs
 *   adaptors in the worker process and children may start no process
 *   (child-permissions.ts). The stub refuses, and Node's child_process and
 *   net internals are never compiled in a thread.
 *
 * Each stub replaces the module only where it is imported from the package
 * named in `importer`, so a bundle that needs the real thing elsewhere keeps it.
 */

/** One module replaced by `contents` when `importer` imports `specifier`. */
export interface ModuleStub {
  /** The bare specifier as written in the importer (`chalk`, `child_process`). */
  specifier: string;
  /** Only imports from files inside this package's directory are replaced. */
  importer: string;
  /** ES module source of the replacement. */
  contents: string;
}

const REFUSE = (what: string): string => `throw new Error(${JSON.stringify(`${what} is not available in a Lanes run thread`)});`;

export const THREAD_STUBS: readonly ModuleStub[] = [
  {
    specifier: '@inquirer/confirm',
    importer: '@openfn/logger',
    contents: `export default async function confirm() { ${REFUSE('an interactive prompt')} }\n`,
  },
  {
    specifier: 'chalk',
    importer: '@openfn/logger',
    contents: [
      '// Every colour and modifier, at any depth, returns its arguments as plain text.',
      "const paint = new Proxy(function paint() {}, { apply: (_target, _this, args) => args.join(' '), get: (_target, key) => (key === 'level' ? 0 : paint) });",
      'export default paint;',
      '',
    ].join('\n'),
  },
  {
    specifier: 'source-map',
    importer: '@openfn/runtime',
    contents: `export class SourceMapConsumer { constructor() { ${REFUSE('source map support')} } }\n`,
  },
  {
    specifier: 'child_process',
    importer: '@openfn/runtime',
    contents: `export function exec() { ${REFUSE('child_process.exec')} }\n`,
  },
];
