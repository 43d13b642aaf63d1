/**
 * Prints .env.example from the option tables, so the file and the code
 * cannot drift apart (test/config/docs.test.ts checks it stays current):
 *   node scripts/print-env-example.ts > .env.example
 */
import { SERVER_OPTIONS } from '../src/config/server-config.ts';
import { WORKER_OPTIONS } from '../src/config/worker-config.ts';
import type { OptionSpec } from '../src/config/option-spec.ts';

function section(title: string, specs: readonly OptionSpec[], seen: Set<string>): string {
  const lines = [`# ${title}`];
  for (const spec of specs) {
    if (!spec.env || seen.has(spec.env)) continue;
    seen.add(spec.env);
    lines.push(`# ${spec.describe} (--${spec.flag}; default: ${spec.defaultText ?? 'unset'})`);
    lines.push(`# ${spec.env}=`);
  }
  return lines.join('\n');
}

const seen = new Set<string>();
process.stdout.write(
  [
    '# Every environment variable Lanes reads, with its flag, default and meaning.',
    '# Copy to .env (or your deployment\'s environment) and uncomment what you set.',
    '',
    section('lanes worker', WORKER_OPTIONS, seen),
    '',
    section('lanes server', SERVER_OPTIONS, seen),
    '',
  ].join('\n'),
);
