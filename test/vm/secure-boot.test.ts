// UEFI Secure Boot end to end: dev built with uefi-secure-boot and a key set made by brl, checked by sbverify and gpgv, and booted under OVMF's Secure Boot build with that key set enrolled.
import test, { type ExecutionContext } from 'ava';
import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, readdirSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { findSets } from '../../src/lib/image/banks.ts';
import { readGpt } from '../../src/lib/image/gpt.ts';
import { handleReader } from '../../src/lib/image/image-reader.ts';
import { imageGrubKeyPath, verifyBootSignatures } from '../../src/lib/secure-boot/boot-signatures.ts';
import { initKeySet, keySetFiles } from '../../src/lib/secure-boot/key-set.ts';
import { readPublicKey } from '../../src/lib/secure-boot/openpgp.ts';
import { bootRecordPath } from '../../src/lib/signpost/host.ts';
import { runSignpostCommand } from '../../src/lib/signpost/signpost.ts';
import { buildVariant, type VariantBuildResult } from '../../src/lib/variant/build.ts';
import { buildManifestName, type BuildManifest } from '../../src/lib/variant/build-manifest.ts';
import { cutPartition, lz4Decompress, sh } from '../e2e/variant-checks.ts';
import { brl, repoDir } from '../helpers/cli.ts';
import { osDiskOf } from '../helpers/dev-image.ts';
import { bootVm } from '../helpers/vm.ts';

const run = promisify(execFile);
const scratch = mkdtempSync(join(tmpdir(), 'brl-secure-boot-vm-'));
const buildId = 'secboot1';
const imagesDir = join(repoDir, 'build', 'images', 'x86_64-dev');
const previousLatest = existsSync(join(imagesDir, 'latest')) ? readlinkSync(join(imagesDir, 'latest')) : undefined;
test.after.always(() => {
  for (const entry of existsSync(imagesDir) ? readdirSync(imagesDir) : []) if (entry.endsWith(`-${buildId}`)) rmSync(join(imagesDir, entry), { recursive: true, force: true });
  if (previousLatest !== undefined) {
    symlinkSync(previousLatest, join(imagesDir, '.latest-restore'));
    renameSync(join(imagesDir, '.latest-restore'), join(imagesDir, 'latest'));
  }
  rmSync(scratch, { recursive: true, force: true });
});

const keysDir = join(scratch, 'keys');
const otherKeysDir = join(scratch, 'other-keys');
const keySets = Promise.all([
  initKeySet(keysDir, { organization: 'brl secure boot test', validDays: 30, rsaBits: 2048 }),
  initKeySet(otherKeysDir, { organization: 'someone else', validDays: 30, rsaBits: 2048 }),
]);

/**
 * The repository's dev variant with uefi-secure-boot, built from a project that shares the
 * repository's files and build directory (so cached RPMs are reused) and has its own variant and
 * brl.toml naming the test's keys.
 */
async function buildSignedDev(): Promise<VariantBuildResult> {
  await keySets;
  const project = join(scratch, 'project');
  mkdirSync(join(project, 'variants', 'dev'), { recursive: true });
  // Packages read sources from the whole checkout (source groups); only the variant and brl.toml differ.
  for (const entry of readdirSync(repoDir)) {
    if (!['variants', 'brl.toml', '.git'].includes(entry)) symlinkSync(join(repoDir, entry), join(project, entry));
  }
  writeFileSync(join(project, 'brl.toml'), `${readFileSync(join(repoDir, 'brl.toml'), 'utf8')}\n[secure-boot]\nkeys-dir = ${JSON.stringify(keysDir)}\n`);
  const devToml = readFileSync(join(repoDir, 'variants', 'dev', 'variant.toml'), 'utf8');
  if (!/^\[image-features\]$/m.test(devToml)) throw new Error('variants/dev/variant.toml has no [image-features] table');
  writeFileSync(join(project, 'variants', 'dev', 'variant.toml'), devToml.replace(/^\[image-features\]$/m, '[image-features]\nuefi-secure-boot = true'));
  const epoch = sh('git', ['-C', repoDir, 'log', '-1', '--format=%ct']).trim();
  return buildVariant(project, 'dev', { progress: 'silent', env: { ...process.env, SOURCE_DATE_EPOCH: epoch, BRL_BUILD_ID: buildId } });
}

let built: Promise<VariantBuildResult> | undefined;
const signedDev = (): Promise<VariantBuildResult> => (built ??= buildSignedDev());

interface BootFiles {
  dir: string;
  manifest: BuildManifest;
  rawDisk: string;
}

let extracted: Promise<BootFiles> | undefined;
/** The raw OS disk with BOOT-A's and EFI-A's files copied out. */
function bootFiles(): Promise<BootFiles> {
  extracted ??= (async () => {
    const result = await signedDev();
    const dir = join(scratch, 'files');
    mkdirSync(dir);
    const manifest = JSON.parse(readFileSync(join(result.outputDir, buildManifestName), 'utf8')) as BuildManifest;
    const rawDisk = join(dir, 'os.img');
    lz4Decompress(osDiskOf(result), rawDisk);
    const partition = (key: string) => manifest.disks.os.partitions.find((entry) => entry.key === key)!;
    for (const [key, file] of [['BOOT-A', 'boot.ext4'], ['EFI-A', 'efi.fat']] as const) {
      cutPartition(rawDisk, partition(key).startMiB * 1024 * 1024, partition(key).sizeMiB * 1024 * 1024, join(dir, file));
    }
    for (const path of ['vmlinuz', 'vmlinuz.sig', 'initrd.img', 'initrd.img.sig', 'grub/grub.cfg', 'grub/grub.cfg.sig']) {
      sh('debugfs', ['-R', `dump /${path} ${join(dir, path.replace('/', '-'))}`, join(dir, 'boot.ext4')]);
    }
    sh('mcopy', ['-i', join(dir, 'efi.fat'), '::/EFI/BOOT/BOOTX64.EFI', join(dir, 'bootx64.efi')]);
    return { dir, manifest, rawDisk };
  })();
  return extracted;
}

test.serial('the signed build: sbverify accepts GRUB and the kernel with db.crt, gpgv accepts grub.cfg, the kernel and the initrd; the manifest says signed', async (t) => {
  const { dir, manifest, rawDisk } = await bootFiles();
  const db = join(keysDir, keySetFiles.dbCertificate);
  for (const binary of ['bootx64.efi', 'vmlinuz']) {
    const { stdout } = await run('sbverify', ['--cert', db, join(dir, binary)]);
    t.regex(stdout, /Signature verification OK/, binary);
    await t.throwsAsync(run('sbverify', ['--cert', join(otherKeysDir, keySetFiles.dbCertificate), join(dir, binary)]), undefined, `${binary} with another db`);
  }
  for (const file of ['grub-grub.cfg', 'vmlinuz', 'initrd.img']) {
    const signature = file === 'grub-grub.cfg' ? join(dir, 'grub-grub.cfg.sig') : join(dir, `${file}.sig`);
    const { stderr } = await run('gpgv', ['--homedir', dir, '--keyring', join(keysDir, keySetFiles.grubPublicKey), signature, join(dir, file)]);
    t.regex(stderr, /Good signature/, file);
  }
  t.true(readFileSync(join(dir, 'grub-grub.cfg'), 'utf8').startsWith('set superusers=""\n'));
  t.true(manifest.bootSigning.signed);
  // The root carries GRUB's key for updog, and updog's check accepts the BOOT the build signed.
  const rootA = manifest.disks.os.partitions.find((entry) => entry.key === 'ROOT-A')!;
  const root = join(dir, 'root.img');
  cutPartition(rawDisk, rootA.startMiB * 1024 * 1024, rootA.sizeMiB * 1024 * 1024, root);
  sh('debugfs', ['-R', `dump ${imageGrubKeyPath} ${join(dir, 'root-grub.gpg')}`, root]);
  t.deepEqual(readFileSync(join(dir, 'root-grub.gpg')), readFileSync(join(keysDir, keySetFiles.grubPublicKey)));
  const bootA = manifest.disks.os.partitions.find((entry) => entry.key === 'BOOT-A')!;
  const key = readPublicKey(readFileSync(join(dir, 'root-grub.gpg')), 'ROOT-A grub.gpg');
  const disk = await open(rawDisk, 'r');
  try {
    t.deepEqual(await verifyBootSignatures(handleReader(disk), bootA.startMiB * 1024 * 1024, key, 'BOOT-A', bootA.sizeMiB * 1024 * 1024), ['/grub/grub.cfg', '/vmlinuz', '/initrd.img']);
  } finally {
    await disk.close();
  }
  t.is(manifest.bootSigning.grubKeyFingerprint, (await keySets)[0].grubKey.fingerprint);
});

/**
 * A copy of the raw OS disk under the artifact's name with the build manifest and the data disk
 * beside it, so brl vm run sees the variant's features (the API bridge) as for the build's own output.
 */
async function imageCopy(name: string): Promise<{ image: string; manifest: BuildManifest }> {
  const { rawDisk, manifest } = await bootFiles();
  const dir = join(scratch, `image-${name}`);
  mkdirSync(dir);
  cpSync(join((await signedDev()).outputDir, buildManifestName), join(dir, buildManifestName));
  const image = join(dir, manifest.disks.os.artifact);
  cpSync(rawDisk, image);
  // Without its data disk the guest has no /local, and storewolf has nowhere to write.
  if (manifest.disks.data !== undefined) cpSync(join((await signedDev()).outputDir, manifest.disks.data.artifact), join(dir, manifest.disks.data.artifact));
  return { image, manifest };
}

test.serial('the signed image boots with Secure Boot enforced to API ready, and the kernel reports Secure Boot on', async (t) => {
  const { image } = await imageCopy('boots');
  const vm = await bootVm(t, { image, secureBootKeys: keysDir });
  t.regex(vm.console(), /secureboot: Secure boot enabled/);
  t.regex(vm.console(), /verity-init: verified root mounted read-only/);
  t.is((await vm.api('GET', '/os')).status, 200);
});

/** Runs `brl vm run` in the foreground for `seconds` and returns the console. */
async function consoleOf(image: string, keys: string, seconds: number): Promise<string> {
  const stateDir = mkdtempSync(join(scratch, 'vm-'));
  const consoleLog = join(stateDir, 'console.log');
  const outcome = await brl(['vm', 'run', '--image', image, '--secure-boot-keys', keys, '--accel', 'tcg', '--state-dir', stateDir, '--console-log', consoleLog, '--timeout', String(seconds)], { cwd: repoDir });
  const text = existsSync(consoleLog) ? readFileSync(consoleLog, 'latin1') : '';
  if (text === '') throw new Error(`no console output: ${outcome.stdout}${outcome.stderr}`);
  return text;
}

test.serial('firmware holding another project\'s db refuses the signed GRUB', async (t) => {
  const { image } = await imageCopy('other-keys');
  const text = await consoleOf(image, otherKeysDir, 45);
  t.regex(text, /Access Denied/);
  t.notRegex(text, /Welcome to GRUB/);
  t.notRegex(text, /Linux version/);
});

test.serial('firmware refuses a GRUB changed after signing', async (t) => {
  const { dir } = await bootFiles();
  const { image, manifest } = await imageCopy('altered-grub');
  const efiA = manifest.disks.os.partitions.find((entry) => entry.key === 'EFI-A')!;
  const grub = readFileSync(join(dir, 'bootx64.efi'));
  // One byte in the middle of GRUB's code: the Authenticode digest no longer matches the signed one.
  const altered = Buffer.from(grub);
  altered[altered.length >> 1]! ^= 0x01;
  writeFileSync(join(dir, 'altered-bootx64.efi'), altered);
  const { stdout } = await run('sbverify', ['--cert', join(keysDir, keySetFiles.dbCertificate), join(dir, 'altered-bootx64.efi')]).catch((error: { stdout: string }) => ({ stdout: error.stdout }));
  t.notRegex(stdout, /Signature verification OK/);
  const efi = join(dir, 'altered-efi.fat');
  cpSync(join(dir, 'efi.fat'), efi);
  sh('mcopy', ['-o', '-i', efi, join(dir, 'altered-bootx64.efi'), '::/EFI/BOOT/BOOTX64.EFI']);
  await run('dd', [`if=${efi}`, `of=${image}`, 'bs=1M', `seek=${efiA.startMiB}`, 'conv=notrunc', 'status=none']);
  const text = await consoleOf(image, keysDir, 45);
  t.regex(text, /Access Denied/);
  t.notRegex(text, /Welcome to GRUB/);
});

/**
 * A copy of the signed image whose bank B holds A's signed files with `alter` applied to BOOT-B,
 * staged as an update would leave it (signpost: valid, then upgrade-to-inactive), so GRUB tries B first.
 */
async function stagedAlteredB(name: string, alter: (bootB: string) => Promise<void>): Promise<string> {
  const { image, manifest } = await imageCopy(name);
  const mib = 1024 * 1024;
  const partition = (key: string) => manifest.disks.os.partitions.find((entry) => entry.key === key)!;
  for (const role of ['BOOT', 'ROOT', 'HASH']) {
    const from = partition(`${role}-A`);
    const to = partition(`${role}-B`);
    await run('dd', [`if=${image}`, `of=${image}`, 'bs=1M', `skip=${from.startMiB}`, `seek=${to.startMiB}`, `count=${from.sizeMiB}`, 'conv=notrunc', 'status=none']);
  }
  const bootB = join(scratch, `${name}-boot-b.ext4`);
  cutPartition(image, partition('BOOT-B').startMiB * mib, partition('BOOT-B').sizeMiB * mib, bootB);
  await alter(bootB);
  // The edit leaves a clean filesystem: only a signature can tell the change.
  sh('e2fsck', ['-fn', bootB]);
  await run('dd', [`if=${bootB}`, `of=${image}`, 'bs=1M', `seek=${partition('BOOT-B').startMiB}`, 'conv=notrunc', 'status=none']);
  const host = { root: join(scratch, `${name}-host`), disk: image };
  const { table } = await readGpt(image);
  mkdirSync(join(bootRecordPath(host.root), '..'), { recursive: true });
  writeFileSync(bootRecordPath(host.root), `${findSets(table, image).a.boot.uniqueGuid}\n`);
  await runSignpostCommand(host, 'mark-inactive-valid');
  const staged = await runSignpostCommand(host, 'upgrade-to-inactive');
  if (staged.nextSet !== 'B') throw new Error(`GRUB would not try B first: ${JSON.stringify(staged)}`);
  return image;
}

/** Replaces one file of an ext4 image with `bytes`, as someone with write access to BOOT could. */
function replaceFile(ext4: string, path: string, bytes: Buffer): void {
  const file = join(scratch, `replacement-${path.replaceAll('/', '-')}`);
  writeFileSync(file, bytes);
  sh('debugfs', ['-w', '-R', `rm /${path}`, ext4]);
  sh('debugfs', ['-w', '-R', `write ${file} /${path}`, ext4]);
}

/** Boots `image` with enforcement on; GRUB tries B, refuses it, and the host must come up on A. */
async function bootsOnA(t: ExecutionContext, image: string): Promise<string> {
  const vm = await bootVm(t, { image, secureBootKeys: keysDir });
  t.log(`API ready on A after B was refused: ${vm.readySeconds.toFixed(1)} s`);
  const text = vm.console();
  t.is((text.match(/Linux version/g) ?? []).length, 1, 'only A\'s kernel ever started');
  t.regex(text, /verity-init: verified root mounted read-only/);
  const status = JSON.parse((await vm.api('GET', '/updates/status')).body) as { failed_update?: { partition_set: string } };
  t.is(status.failed_update?.partition_set, 'B', 'the host reports B as a failed update');
  return text;
}

test.serial('a staged B whose grub.cfg root hash was changed after signing is refused by GRUB; the host falls back to A', async (t) => {
  const { dir, manifest } = await bootFiles();
  const original = readFileSync(join(dir, 'grub-grub.cfg'), 'utf8');
  const rootHash = manifest.verity.rootHash;
  t.true(original.includes(rootHash));
  const altered = Buffer.from(original.replace(rootHash, `${rootHash[0] === '0' ? '1' : '0'}${rootHash.slice(1)}`));
  writeFileSync(join(dir, 'altered-grub.cfg'), altered);
  const { stderr } = await run('gpgv', ['--homedir', dir, '--keyring', join(keysDir, keySetFiles.grubPublicKey), join(dir, 'grub-grub.cfg.sig'), join(dir, 'altered-grub.cfg')]).catch((error: { stderr: string }) => ({ stderr: error.stderr }));
  t.regex(stderr, /BAD signature/);
  const image = await stagedAlteredB('altered-grub-cfg', async (bootB) => replaceFile(bootB, 'grub/grub.cfg', altered));
  const text = await bootsOnA(t, image);
  // configfile refused B's grub.cfg, so GRUB went on to the embedded config's last lines and rebooted.
  t.regex(text, /brl: no bootable BOOT partition, or its grub\.cfg did not boot/);
});

test.serial('a staged B whose kernel was changed after signing is refused by GRUB; the host falls back to A', async (t) => {
  const { dir } = await bootFiles();
  const kernel = readFileSync(join(dir, 'vmlinuz'));
  // One byte in the middle of the compressed kernel: GRUB's OpenPGP signature over it no longer matches.
  const altered = Buffer.from(kernel);
  altered[altered.length >> 1]! ^= 0x01;
  const image = await stagedAlteredB('altered-kernel', async (bootB) => replaceFile(bootB, 'vmlinuz', altered));
  const text = await bootsOnA(t, image);
  // B's grub.cfg was good: its entry failed at `linux`, and the fallback entry rebooted.
  t.regex(text, /brl: this bank's kernel did not boot/);
});

test.serial('the signed image is reproducible: a second build with the same keys gives the same bytes, signatures included', async (t) => {
  const first = await signedDev();
  const digests = (result: VariantBuildResult) => Object.fromEntries(result.artifacts.map((artifact) => [artifact.file, artifact.sha256]));
  const before = digests(first);
  const again = await buildVariant(join(scratch, 'project'), 'dev', { progress: 'silent', env: { ...process.env, SOURCE_DATE_EPOCH: String(first.sourceDateEpoch), BRL_BUILD_ID: buildId } });
  t.deepEqual(digests(again), before);
  t.true(again.bootSigning.signed);
});
