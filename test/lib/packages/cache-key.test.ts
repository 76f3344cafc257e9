import test from 'ava';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cacheKey, canonicalJson, changedInputs, collectInputs, listLocalSources, type InputContext } from '../../../src/lib/packages/cache-key.ts';
import { loadPackage } from '../../../src/lib/packages/manifest.ts';
import { makeProject, writePackage } from './project.ts';

const context: InputContext = { arch: 'x86_64', toolchain: 'rpm 4.18; gcc 12', macroFile: '%_cross_os bottlerocket-\n', dependencyRpms: {} };

test('canonical JSON does not depend on key order', (t) => {
  t.is(canonicalJson({ b: 1, a: { d: [1, { z: 1, y: 2 }], c: 'x' } }), canonicalJson({ a: { c: 'x', d: [1, { y: 2, z: 1 }] }, b: 1 }));
});

test('local sources are the files beside the spec, without the spec, package.toml, dotfiles or fetched external files', async (t) => {
  const projectDir = makeProject(['app']);
  writePackage(projectDir, 'app', { 'patches/0001-fix.patch': 'p', '.gitignore': 'x', 'big.tar.gz': 'fetched copy' });
  writeFileSync(
    join(projectDir, 'packages-specs', 'app', 'package.toml'),
    `build-dependencies = ["base"]\n[[external-files]]\nurl = "https://example.invalid/big.tar.gz"\nsha512 = "${'a'.repeat(128)}"\n`,
  );
  t.deepEqual(await listLocalSources(await loadPackage(projectDir, 'app')), ['app.c', 'patches/0001-fix.patch']);
});

test('the key is stable for equal inputs and changes with each input', async (t) => {
  const projectDir = makeProject(['app']);
  const load = () => loadPackage(projectDir, 'app');
  const baseline = await collectInputs(await load(), context);
  t.is(cacheKey(await collectInputs(await load(), context)), cacheKey(baseline));

  const variations: Array<[string, () => Promise<unknown>]> = [
    ['arch', async () => collectInputs(await load(), { ...context, arch: 'aarch64' })],
    ['toolchain', async () => collectInputs(await load(), { ...context, toolchain: 'rpm 4.19; gcc 13' })],
    ['macros', async () => collectInputs(await load(), { ...context, macroFile: '%_cross_os other-\n' })],
    ['buildDependencies: base', async () => collectInputs(await load(), { ...context, dependencyRpms: { base: { 'b.rpm': 'f'.repeat(64) } } })],
  ];
  for (const [field, make] of variations) {
    const changed = (await make()) as typeof baseline;
    t.not(cacheKey(changed), cacheKey(baseline), field);
    t.deepEqual(changedInputs(baseline, changed), [field]);
  }

  writeFileSync(join(projectDir, 'packages-specs', 'app', 'app.c'), 'int main(void) { return 1; }\n');
  const sourceChanged = await collectInputs(await load(), context);
  t.not(cacheKey(sourceChanged), cacheKey(baseline));
  t.deepEqual(changedInputs(baseline, sourceChanged), ['localSources: app.c']);

  writeFileSync(join(projectDir, 'packages-specs', 'app', 'app.spec'), '# changed\n', { flag: 'a' });
  mkdirSync(join(projectDir, 'packages-specs', 'app', 'extra'));
  writeFileSync(join(projectDir, 'packages-specs', 'app', 'extra', 'new.txt'), 'n');
  t.deepEqual(changedInputs(sourceChanged, await collectInputs(await load(), context)), ['spec', 'localSources: extra/new.txt']);
});

test('a changed pinned sha512 changes the key', async (t) => {
  const projectDir = makeProject(['base']);
  const pin = (digit: string) =>
    writeFileSync(
      join(projectDir, 'packages-specs', 'base', 'package.toml'),
      `[[external-files]]\nurl = "https://example.invalid/src.tar.gz"\nsha512 = "${digit.repeat(128)}"\n`,
    );
  pin('a');
  const before = await collectInputs(await loadPackage(projectDir, 'base'), context);
  pin('b');
  const after = await collectInputs(await loadPackage(projectDir, 'base'), context);
  t.deepEqual(changedInputs(before, after), ['manifest', 'externalFiles: src.tar.gz']);
});
