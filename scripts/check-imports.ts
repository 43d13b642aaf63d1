/**
 * `npm run lint` step: fails (exit 1) with one line per problem when a file
 * in src/ imports a layer it may not, or when imports form a cycle. The rules
 * are in scripts/import-graph.ts; docs/architecture.md explains them.
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkImports, readSources } from './import-graph.ts';

const src = join(dirname(fileURLToPath(import.meta.url)), '..', 'src');
const sources = readSources(src);
const problems = checkImports(sources);
for (const problem of problems) process.stderr.write(`check-imports: ${problem.message}\n`);
if (problems.length > 0) {
  process.stderr.write(`check-imports: ${problems.length} problem(s) in ${sources.size} files\n`);
  process.exit(1);
}
process.stdout.write(`check-imports: ${sources.size} files, no layer violation, no cycle\n`);
