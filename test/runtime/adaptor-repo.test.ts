/**
 * runtime/adaptor-repo.ts against real npm installs from a local directory:
 * a tag resolves once per repo lifetime (a worker never changes versions
 * mid-flight), and a new lifetime sees the new version.
 */
import { cp, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import test from 'ava';
import { AdaptorRepo } from '../../src/runtime/adaptor-repo.ts';
import { FIXTURE_DIR, silentLogger, tempDir } from '../engine/helpers.ts';

const NAME = '@openfn/language-lanesfixture';

async function setVersion(dir: string, version: string): Promise<void> {
  const file = path.join(dir, 'package.json');
  const pkg = JSON.parse(await readFile(file, 'utf8')) as { version: string };
  pkg.version = version;
  await writeFile(file, JSON.stringify(pkg, null, 2));
}

test('@latest resolves once per repo lifetime; a new lifetime picks up the new version', async (t) => {
  const source = path.join(await tempDir(t, 'lanes-adaptor-src-'), 'adaptor');
  await cp(FIXTURE_DIR, source, { recursive: true });
  const repoDir = await tempDir(t, 'lanes-adaptor-repo-');
  const options = { repoDir, logger: silentLogger, localAdaptors: { [NAME]: source } };

  const first = await AdaptorRepo.create(options);
  const before = await first.resolve(`${NAME}@latest`);
  t.is(before.version, '1.0.0');
  t.is(before.specifier, `${NAME}@1.0.0`);

  // A new version is published while the worker runs: this lifetime keeps the version it resolved.
  await setVersion(source, '1.1.0');
  t.is((await first.resolve(`${NAME}@latest`)).specifier, `${NAME}@1.0.0`);
  // An exact version is installed beside it; both coexist.
  const exact = await first.resolve(`${NAME}@1.1.0`);
  t.is(exact.version, '1.1.0');
  t.not(exact.root, before.root);

  const second = await AdaptorRepo.create(options);
  t.is((await second.resolve(`${NAME}@latest`)).specifier, `${NAME}@1.1.0`);
});
