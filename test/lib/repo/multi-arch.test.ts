import test, { type ExecutionContext } from 'ava';
import { copyFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { buildRepository } from '../../../src/lib/repo/build.ts';
import { findBuildImages } from '../../../src/lib/repo/build-images.ts';
import { defaultExpirationPolicy, resolveWavePolicy } from '../../../src/lib/repo/policy.ts';
import { serveDirectory } from '../../../src/lib/repo/serve.ts';
import { parseManifest } from '../../../src/lib/update-metadata/index.ts';
import { chooseUpdate, type HostUpdateState } from '../../../src/lib/update-metadata/select.ts';
import { defaultTransportOptions } from '../../../src/lib/updog/http.ts';
import { UpdateRepository } from '../../../src/lib/updog/repository.ts';
import { makeImages, makeKey, makeRoot, tempDir } from './helpers.ts';

// One release of `dev` for both arches into one output directory, as `brl repo build --arch …` twice does.
async function buildBothArches(t: ExecutionContext) {
  const dir = tempDir();
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const signer = await makeKey(dir, 'signing');
  const rootPath = await makeRoot(dir, signer);
  const outdir = join(dir, 'repo');
  const now = Math.floor(Date.now() / 1000);
  const results = [];
  for (const arch of ['x86_64', 'aarch64']) {
    const images = await findBuildImages(makeImages(dir, '1.0.0', 'dev', arch), 'dev', arch);
    results.push(await buildRepository({
      variant: 'dev', arch, repo: { name: 'default' }, outdir, rootPath, images, migrations: {},
      wavePolicy: await resolveWavePolicy('default'), expirationPolicy: defaultExpirationPolicy, now, releaseStart: now, signers: [signer],
    }));
  }
  return { outdir, results };
}

const host = (arch: string): HostUpdateState => ({ variant: 'dev', arch, version: '0.9.0', seed: 0, versionLock: 'latest', ignoreWaves: true, nowMs: Date.now() });

test('both arches share one targets directory; each <variant>/<arch> repository lists only its own arch\'s images', async (t) => {
  const { outdir, results } = await buildBothArches(t);
  t.deepEqual(results.map((result) => result.metadataDir), [join(outdir, 'dev', 'x86_64'), join(outdir, 'dev', 'aarch64')]);
  t.deepEqual(results.map((result) => result.targetsDir), [join(outdir, 'targets'), join(outdir, 'targets')]);
  const stored = readdirSync(join(outdir, 'targets'));
  for (const arch of ['x86_64', 'aarch64']) {
    for (const suffix of ['boot.ext4.lz4', 'root.ext4.lz4', 'root.verity.lz4']) {
      t.true(stored.some((name) => name.endsWith(`.bottlerocket-dev-${arch}-1.0.0-abcdef12-${suffix}`)), `${arch} ${suffix} is stored`);
    }
  }
  for (const [index, arch] of ['x86_64', 'aarch64'].entries()) {
    const names = results[index]!.targets.map((target) => target.name).filter((name) => name !== 'manifest.json');
    t.true(names.length >= 3);
    t.true(names.every((name) => name.includes(`-${arch}-`)), `${arch} repository: ${names.join(', ')}`);
  }
});

test('updog on each arch, reading its arch\'s repository over HTTP, verifies it and chooses that arch\'s images', async (t) => {
  const { outdir, results } = await buildBothArches(t);
  const server = await serveDirectory(outdir);
  t.teardown(() => server.close());
  for (const [index, arch] of ['x86_64', 'aarch64'].entries()) {
    const state = tempDir('brl-updog-state-');
    t.teardown(() => rmSync(state, { recursive: true, force: true }));
    copyFileSync(join(results[index]!.metadataDir, '1.root.json'), join(state, 'root.json'));
    const repository = await UpdateRepository.open(state, { metadataBaseUrl: `${server.url}dev/${arch}/`, targetsBaseUrl: `${server.url}targets/` }, defaultTransportOptions);
    const manifest = parseManifest((await repository.readTarget('manifest.json')).toString('utf8'), `dev/${arch} manifest.json`);
    t.deepEqual(manifest.updates.map((update) => update.arch), [arch]);
    const chosen = chooseUpdate(manifest, host(arch));
    t.is(chosen?.version, '1.0.0');
    t.deepEqual(chosen?.images, {
      boot: `bottlerocket-dev-${arch}-1.0.0-abcdef12-boot.ext4.lz4`,
      root: `bottlerocket-dev-${arch}-1.0.0-abcdef12-root.ext4.lz4`,
      hash: `bottlerocket-dev-${arch}-1.0.0-abcdef12-root.verity.lz4`,
    });
    // The chosen images are targets of this arch's repository, so updog can fetch and verify them.
    t.is((await repository.targetInfo(chosen!.images.boot)).path, chosen!.images.boot);
    const other = arch === 'x86_64' ? 'aarch64' : 'x86_64';
    t.is(chooseUpdate(manifest, host(other)), undefined, `an ${other} host finds nothing in the ${arch} manifest`);
  }
});
