// Benchmark: build, sign and validate a TUF repository with 10,000 targets; wall time and peak RSS per phase.
// Run: flock /tmp/brl-bench.lock node bench/repo.ts [--targets 10000] [--target-bytes 1024] [--key rsa|ed25519|ecdsa]
// Each phase runs in its own process, so its peak RSS is its own.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { findBuildImages } from '../src/lib/repo/build-images.ts';
import { buildRepository } from '../src/lib/repo/build.ts';
import { repoLayout } from '../src/lib/repo/layout.ts';
import { configuredTrustRoot, signRepository } from '../src/lib/repo/maintain.ts';
import { defaultExpirationPolicy, resolveWavePolicy } from '../src/lib/repo/policy.ts';
import { DirectoryReader } from '../src/lib/repo/reader.ts';
import { addRootKey, editRootFile, initRootFile, readRootFile, setRoleThreshold, setRootExpires, signRootFile } from '../src/lib/repo/root-file.ts';
import { validateRepository } from '../src/lib/repo/validate.ts';
import { serveDirectory } from '../src/lib/repo/serve.ts';
import { Updater } from 'tuf-js';
import { generateKeyFile, loadKeyFile, type GeneratedKeyType } from '../src/lib/signing/key-file.ts';
import { roleNames } from '../src/lib/tuf/metadata.ts';
import { nowSeconds } from '../src/lib/tuf/time.ts';

const { values } = parseArgs({
  options: {
    phase: { type: 'string' },
    dir: { type: 'string' },
    targets: { type: 'string', default: '10000' },
    'target-bytes': { type: 'string', default: '1024' },
    key: { type: 'string', default: 'rsa' },
  },
});

async function phase(name: string, dir: string): Promise<void> {
  const started = performance.now();
  const layout = repoLayout(join(dir, 'repo'), 'dev', 'x86_64');
  const rootPath = join(dir, 'root.json');
  let detail = '';
  if (name === 'build') {
    const now = nowSeconds();
    const extra = JSON.parse(readFileSync(join(dir, 'extra.json'), 'utf8')) as string[];
    const result = await buildRepository({
      variant: 'dev', arch: 'x86_64', repo: { name: 'bench' }, outdir: layout.outdir, rootPath,
      images: await findBuildImages(join(dir, 'images'), 'dev', 'x86_64'), extraCopyTargets: extra,
      wavePolicy: await resolveWavePolicy('default'), expirationPolicy: defaultExpirationPolicy, now, releaseStart: now,
    });
    detail = `${result.targets.length} targets, targets.json ${statSync(join(layout.metadataDir, `${result.versions.targets}.targets.json`)).size} bytes`;
  } else if (name === 'sign') {
    await signRepository(layout, await configuredTrustRoot(rootPath), [await loadKeyFile(join(dir, 'key.pem'))], nowSeconds());
  } else if (name === 'validate' || name === 'validate-targets') {
    const result = await validateRepository({
      reader: new DirectoryReader(layout.metadataDir, layout.targetsDir), trustedRoot: await readRootFile(rootPath), now: nowSeconds(), checkTargets: name === 'validate-targets',
    });
    detail = `${result.targetCount} targets, ${result.targetsChecked} read and hashed`;
  } else if (name === 'tuf-js-refresh') {
    // The reference client loading the same metadata over loopback HTTP from brl repo serve.
    const server = await serveDirectory(layout.outdir);
    const metadataDir = mkdtempSync(join(tmpdir(), 'brl-bench-tufjs-'));
    writeFileSync(join(metadataDir, 'root.json'), readFileSync(rootPath));
    const updater = new Updater({ metadataDir, metadataBaseUrl: `${server.url}dev/x86_64`, targetBaseUrl: `${server.url}targets` });
    await updater.refresh();
    detail = `metadata only; ${(await updater.getTargetInfo('target-09999.bin')) ? 'last target found' : 'last target missing'}`;
    await server.close();
  }
  const wallMs = performance.now() - started;
  process.stdout.write(`${JSON.stringify({ phase: name, wallMs, peakRssMiB: process.resourceUsage().maxRSS / 1024, detail })}\n`);
}

if (values.phase) {
  await phase(values.phase, values.dir!);
} else {
  const count = Number(values.targets);
  const dir = mkdtempSync(join(tmpdir(), 'brl-bench-repo-'));
  const key = await generateKeyFile(join(dir, 'key.pem'), values.key as GeneratedKeyType, { rsaBits: 3072 });
  const rootPath = join(dir, 'root.json');
  await initRootFile(rootPath, nowSeconds());
  await editRootFile(rootPath, (signed) => {
    setRootExpires(signed, nowSeconds() + 365 * 86_400);
    for (const role of roleNames) setRoleThreshold(signed, role, 1);
    addRootKey(signed, key.publicKey, []);
  });
  await signRootFile(rootPath, [key]);
  mkdirSync(join(dir, 'images'));
  for (const suffix of ['-boot.ext4.lz4', '-root.ext4.lz4', '-root.verity.lz4']) writeFileSync(join(dir, 'images', `bottlerocket-dev-x86_64-1.0.0-abcdef12${suffix}`), randomBytes(1 << 20));
  mkdirSync(join(dir, 'extra'));
  const extra: string[] = [];
  for (let index = 0; index < count; index += 1) {
    const path = join(dir, 'extra', `target-${String(index).padStart(5, '0')}.bin`);
    writeFileSync(path, randomBytes(Number(values['target-bytes'])));
    extra.push(path);
  }
  writeFileSync(join(dir, 'extra.json'), JSON.stringify(extra));
  const run = promisify(execFile);
  const results = [];
  for (const name of ['build', 'sign', 'validate', 'validate-targets', 'tuf-js-refresh']) {
    const { stdout } = await run(process.execPath, [new URL(import.meta.url).pathname, '--phase', name, '--dir', dir], { maxBuffer: 1 << 20 });
    results.push(JSON.parse(stdout));
  }
  console.log(`${count} targets of ${values['target-bytes']} bytes + 3 × 1 MiB images, ${values.key} key, Node ${process.version}`);
  console.log('| phase | wall | peak RSS | detail |\n|---|---|---|---|');
  for (const result of results) console.log(`| ${result.phase} | ${(result.wallMs / 1000).toFixed(2)} s | ${result.peakRssMiB.toFixed(0)} MiB | ${result.detail} |`);
  rmSync(dir, { recursive: true, force: true });
}
