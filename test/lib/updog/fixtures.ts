// A small update world for updog tests: release images (ext4 root + verity + boot with grub.cfg),
// a signed TUF repository served from 127.0.0.1, a host root directory and an A/B disk.
import { execFileSync } from 'node:child_process';
import { createHash, createPublicKey, generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rm, writeFile, truncate } from 'node:fs/promises';
import { readGpt } from '../../../src/lib/image/gpt.ts';
import { nextBoot } from '../../../src/lib/signpost/index.ts';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { imageGrubKeyPath } from '../../../src/lib/secure-boot/boot-signatures.ts';
import { detachedSignature, transferablePublicKey, type OpenPgpPublicKey } from '../../../src/lib/secure-boot/openpgp.ts';
import { PrivateKeySigner } from '../../../src/lib/signing/pem-signer.ts';
import { newRoot } from '../../../src/lib/tuf/root.ts';
import { newTargets, consistentTargetPath } from '../../../src/lib/tuf/targets.ts';
import { newSnapshot, newTimestamp } from '../../../src/lib/tuf/snapshot.ts';
import { serializeEnvelope, type Envelope, type SignedCommon } from '../../../src/lib/tuf/metadata.ts';
import { signEnvelope } from '../../../src/lib/tuf/sign.ts';
import { formatExpires, nowSeconds } from '../../../src/lib/tuf/time.ts';
import { addUpdate, emptyManifest, serializeManifest, setMigrations, type Manifest } from '../../../src/lib/update-metadata/index.ts';
import { FaultServer } from '../../helpers/fault-server.ts';
import { makeAbDisk, scratchDir, type FixtureSizes } from '../signpost/fixtures.ts';

export const VARIANT = 'test-minimal';
export const ARCH = process.arch === 'arm64' ? 'aarch64' : 'x86_64';
export const SIZES: FixtureSizes = { bootMiB: 2, rootMiB: 4, hashMiB: 1 };

export interface ReleaseImages {
  version: string;
  /** Uncompressed images, as they must land on the partitions. */
  root: Buffer;
  boot: Buffer;
  hash: Buffer;
  rootHash: string;
  /** Target name → LZ4 frame bytes. */
  targets: Record<string, Buffer>;
  names: { root: string; boot: string; hash: string };
}

function run(command: string, args: string[]): string {
  return execFileSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** LZ4 frame of a file (from a file, so `--content-size` can record the size). */
function lz4(path: string, extra: string[] = []): Buffer {
  return execFileSync('lz4', ['-9', '-q', '-c', ...extra, path], { maxBuffer: 1 << 30 });
}

export interface ReleaseOptions {
  rootKiB?: number;
  /** Record the decoded size in each LZ4 frame header. */
  contentSize?: boolean;
  /** Use this file as the root image instead of a small ext4 (benchmarks). */
  rootImage?: string;
  hashMiB?: number;
  /** Where to build; default a new temp dir. */
  dir?: string;
  /** Put a wrong root hash into grub.cfg (a correctly signed but mis-built release). */
  wrongRootHash?: boolean;
  /** Sign BOOT as a Secure Boot build does: an initrd is added, and grub.cfg, vmlinuz and initrd.img get `.sig`s by this key. */
  grubKey?: TestGrubKey;
  /** Size of the BOOT filesystem; default 1 MiB. */
  bootKiB?: number;
  /** Applied to BOOT after signing: grub.cfg's root hash changed, or initrd.img.sig left out. */
  tamperAfterSigning?: 'root-hash' | 'drop-initrd-sig';
}

/** A project's GRUB key: what signs BOOT, and the keyring (grub.gpg) a Secure Boot image carries. */
export interface TestGrubKey {
  signer: PrivateKeySigner;
  key: OpenPgpPublicKey;
  keyring: Buffer;
}

export async function makeGrubKey(project: string): Promise<TestGrubKey> {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const signer = new PrivateKeySigner(privateKey, `test:${project}-grub`);
  const key = { publicKey: createPublicKey(privateKey), creationTime: 1_767_225_600 };
  return { signer, key, keyring: await transferablePublicKey(signer, key, `${project} GRUB`) };
}

/** grub.cfg as brl renders it, reduced to what updog reads. */
function grubConfig(version: string, dataBlocks: number, rootHash: string, salt: string, initrd: boolean): string {
  return `set default="0"
set timeout="0"
set dm_verity_root="root,,,ro,0 ${dataBlocks * 8} verity 1 PARTUUID=$boot_uuid/PARTNROFF=1 PARTUUID=$boot_uuid/PARTNROFF=2 4096 4096 ${dataBlocks} 1 sha256 ${rootHash} ${salt} 2 restart_on_corruption ignore_zero_blocks"

menuentry "Test OS ${version}" --unrestricted {
   linux ($root)/vmlinuz root=/dev/dm-0 dm-mod.create="$dm_verity_root"
${initrd ? '   initrd ($root)/initrd.img\n' : ''}   boot
}
`;
}

/** Writes `<file>.sig` beside each file, as the build's writeGrubSignature does. */
async function signBootFiles(bootTree: string, grubKey: TestGrubKey, files: string[]): Promise<void> {
  for (const file of files) {
    await writeFile(join(bootTree, `${file}.sig`), await detachedSignature(grubKey.signer, grubKey.key, await readFile(join(bootTree, file)), 1_780_000_000));
  }
}

/** Builds one release: a root ext4 of `rootKiB`, its verity tree, a BOOT ext4 with a matching grub.cfg. */
export async function buildRelease(version: string, options: ReleaseOptions = {}): Promise<ReleaseImages> {
  const dir = options.dir ?? await scratchDir(`brl-release-${version}-`);
  let rootPath = options.rootImage;
  if (rootPath === undefined) {
    const tree = join(dir, 'tree');
    await mkdir(join(tree, 'usr', 'lib'), { recursive: true });
    await writeFile(join(tree, 'usr', 'lib', 'os-release'), `VARIANT_ID=${VARIANT}\nVERSION_ID=${version}\n`);
    await writeFile(join(tree, 'payload'), randomBytes(600 * 1024));
    rootPath = join(dir, 'root.ext4');
    run('mkfs.ext4', ['-q', '-F', '-O', '^has_journal', '-b', '4096', '-E', 'root_owner=0:0', '-d', tree, rootPath, `${options.rootKiB ?? 2048}K`]);
  }
  const hashPath = join(dir, 'root.verity');
  await writeFile(hashPath, '');
  await truncate(hashPath, (options.hashMiB ?? SIZES.hashMiB) * 1024 * 1024);
  const salt = createHash('sha256').update(`salt-${version}`).digest('hex');
  const formatted = run('veritysetup', ['format', '--format', '1', '--hash', 'sha256', '--data-block-size', '4096', '--hash-block-size', '4096',
    '--salt', salt, '--uuid', '11111111-2222-4333-8444-555555555555', rootPath, hashPath]);
  const rootHash = /Root hash:\s+([0-9a-f]{64})/.exec(formatted)![1]!;
  const grubRootHash = options.wrongRootHash ? createHash('sha256').update(rootHash).digest('hex') : rootHash;
  const root = await readFile(rootPath);
  const dataBlocks = root.length / 4096;
  const bootTree = join(dir, 'boot');
  await mkdir(join(bootTree, 'grub'), { recursive: true });
  await writeFile(join(bootTree, 'vmlinuz'), randomBytes(64 * 1024));
  await writeFile(join(bootTree, 'grub', 'grub.cfg'), grubConfig(version, dataBlocks, grubRootHash, salt, options.grubKey !== undefined));
  if (options.grubKey !== undefined) {
    await writeFile(join(bootTree, 'initrd.img'), randomBytes(16 * 1024));
    await signBootFiles(bootTree, options.grubKey, ['grub/grub.cfg', 'vmlinuz', 'initrd.img']);
    if (options.tamperAfterSigning === 'root-hash') {
      const otherHash = createHash('sha256').update(rootHash).digest('hex');
      await writeFile(join(bootTree, 'grub', 'grub.cfg'), grubConfig(version, dataBlocks, otherHash, salt, true));
    }
    if (options.tamperAfterSigning === 'drop-initrd-sig') await rm(join(bootTree, 'initrd.img.sig'));
  }
  const bootPath = join(dir, 'boot.ext4');
  run('mkfs.ext4', ['-q', '-F', '-O', '^has_journal', '-d', bootTree, bootPath, `${options.bootKiB ?? 1024}K`]);
  const boot = await readFile(bootPath);
  const hash = await readFile(hashPath);
  const prefix = `bottlerocket-${VARIANT}-${ARCH}-${version}-abcdef12`;
  const names = { root: `${prefix}-root.ext4.lz4`, boot: `${prefix}-boot.ext4.lz4`, hash: `${prefix}-root.verity.lz4` };
  const flags = options.contentSize ? ['--content-size'] : [];
  return {
    version, root, boot, hash, rootHash, names,
    targets: { [names.root]: lz4(rootPath, flags), [names.boot]: lz4(bootPath, flags), [names.hash]: lz4(hashPath, flags) },
  };
}

export interface TestRepository {
  server: FaultServer;
  metadataBaseUrl: string;
  targetsBaseUrl: string;
  rootJson: Buffer;
  /** Re-signs and republishes with new targets/manifest (new versions). */
  publish(changes: { manifest?: Manifest; targets?: Record<string, Buffer>; timestampExpiresIn?: number; corrupt?: string[] }): Promise<void>;
  /** Publishes root version N+1 with a new key (signed by the old and new keys) and re-signs everything with it. */
  rotateRoot(): Promise<Buffer>;
  /** Serves other bytes as a metadata file (e.g. a forged `2.root.json`). */
  serveMetadata(name: string, bytes: Buffer): void;
  /** URL path of a target's consistent-snapshot file. */
  targetPath(name: string): string;
}

export async function startRepository(releases: ReleaseImages[], migrations: Record<string, Buffer> = {}, migrationEdges: Record<string, string[]> = {}): Promise<TestRepository> {
  const server = await FaultServer.start();
  const { privateKey } = generateKeyPairSync('ed25519');
  let signer = new PrivateKeySigner(privateKey, 'test');
  const expires = formatExpires(nowSeconds() + 86_400 * 7);
  let rootVersion = 1;
  const signedRoot = async (key: PrivateKeySigner, by: PrivateKeySigner[]) => {
    let root = newRoot(expires);
    root.signed.version = rootVersion;
    root.signed.keys[key.keyId] = key.publicKey;
    for (const role of ['root', 'snapshot', 'targets', 'timestamp'] as const) root.signed.roles[role] = { keyids: [key.keyId], threshold: 1 };
    root = await signEnvelope(root, by);
    return serializeEnvelope(root);
  };
  const rootJson = await signedRoot(signer, [signer]);
  const metaPath = `/metadata/${VARIANT}/${ARCH}`;
  server.serve(`${metaPath}/1.root.json`, rootJson);

  let manifest = emptyManifest();
  for (const release of releases) manifest = addUpdate(manifest, { variant: VARIANT, arch: ARCH, version: release.version, images: release.names });
  manifest = setMigrations(manifest, migrationEdges);
  let allTargets: Record<string, Buffer> = { ...migrations };
  for (const release of releases) allTargets = { ...allTargets, ...release.targets };
  let version = 0;
  const paths = new Map<string, string>();

  const publish: TestRepository['publish'] = async (changes) => {
    if (changes.manifest) manifest = changes.manifest;
    if (changes.targets) allTargets = { ...allTargets, ...changes.targets };
    version += 1;
    const targetFiles = { ...allTargets, 'manifest.json': Buffer.from(serializeManifest(manifest)) };
    let targets = newTargets(version, expires);
    for (const [name, bytes] of Object.entries(targetFiles)) {
      const sha256 = createHash('sha256').update(bytes).digest('hex');
      targets.signed.targets[name] = { length: bytes.length, hashes: { sha256 } };
      const path = `/targets/${consistentTargetPath(name, sha256)}`;
      paths.set(name, path);
      const served = changes.corrupt?.includes(name) ? Buffer.from(bytes.map((byte, index) => (index === bytes.length >> 1 ? byte ^ 0xff : byte))) : bytes;
      server.serve(path, served);
    }
    targets = await signEnvelope(targets, [signer]);
    const targetsBytes = serializeEnvelope(targets);
    const meta = (bytes: Buffer, v: number) => ({ version: v, length: bytes.length, hashes: { sha256: createHash('sha256').update(bytes).digest('hex') } });
    const snapshot = await signEnvelope(newSnapshot(version, expires, meta(targetsBytes, version)), [signer]);
    const snapshotBytes = serializeEnvelope(snapshot);
    const timestampExpires = formatExpires(nowSeconds() + (changes.timestampExpiresIn ?? 86_400));
    const timestamp = await signEnvelope(newTimestamp(version, timestampExpires, meta(snapshotBytes, version)), [signer]);
    server.serve(`${metaPath}/${version}.targets.json`, targetsBytes);
    server.serve(`${metaPath}/${version}.snapshot.json`, snapshotBytes);
    server.serve(`${metaPath}/timestamp.json`, serializeEnvelope(timestamp as Envelope<SignedCommon>));
  };
  await publish({});
  const rotateRoot: TestRepository['rotateRoot'] = async () => {
    const next = new PrivateKeySigner(generateKeyPairSync('ed25519').privateKey, 'test');
    rootVersion += 1;
    const bytes = await signedRoot(next, [signer, next]);
    server.serve(`${metaPath}/${rootVersion}.root.json`, bytes);
    signer = next;
    await publish({});
    return bytes;
  };
  return {
    server,
    rotateRoot,
    serveMetadata: (name, bytes) => server.serve(`${metaPath}/${name}`, bytes),
    metadataBaseUrl: server.url(`${metaPath}/`),
    targetsBaseUrl: server.url('/targets/'),
    rootJson,
    publish,
    targetPath: (name) => paths.get(name)!,
  };
}

export interface TestHost {
  dir: string;
  root: string;
  disk: string;
}

/** A host running `version` from set A of a fresh disk (booted once with next-boot), trusting `repo`. */
export async function makeHost(
  repo: Pick<TestRepository, 'metadataBaseUrl' | 'targetsBaseUrl' | 'rootJson'>,
  version: string,
  config: Partial<Record<string, string | number | boolean>> = {},
  disk: { sizes?: FixtureSizes; markActiveSet?: boolean } = {},
  image: { grubKeyring?: Buffer } = {},
): Promise<TestHost> {
  const dir = await scratchDir('brl-updog-host-');
  const root = join(dir, 'root');
  const diskPath = join(dir, 'disk.img');
  await mkdir(join(root, 'etc'), { recursive: true });
  await mkdir(join(root, 'usr', 'lib'), { recursive: true });
  await mkdir(join(root, 'usr', 'share', 'updog'), { recursive: true });
  const settings = { metadata_base_url: repo.metadataBaseUrl, targets_base_url: repo.targetsBaseUrl, seed: 1234, version_lock: 'latest', ignore_waves: false, ...config };
  await writeFile(join(root, 'etc', 'updog.toml'), Object.entries(settings).map(([key, value]) => `${key} = ${JSON.stringify(value)}\n`).join(''));
  await writeFile(join(root, 'usr', 'lib', 'os-release'), `NAME=Bottlerocket\nID=bottlerocket\nVARIANT_ID=${VARIANT}\nVERSION_ID=${version}\nBUILD_ID=abcdef12\n`);
  await writeFile(join(root, 'usr', 'share', 'updog', 'root.json'), repo.rootJson);
  if (image.grubKeyring !== undefined) {
    await mkdir(join(root, imageGrubKeyPath, '..'), { recursive: true });
    await writeFile(join(root, imageGrubKeyPath), image.grubKeyring);
  }
  await makeAbDisk(diskPath, disk.sizes ?? SIZES);
  if (disk.markActiveSet !== false) {
    // Set A holds recognisable bytes so tests can prove it is never touched.
    const { table } = await readGpt(diskPath);
    const handle = await open(diskPath, 'r+');
    for (const partition of table.partitions.filter((p) => p.name.endsWith('-A'))) {
      const size = Number(partition.lastLba - partition.firstLba + 1n) * 512;
      await handle.write(Buffer.alloc(size, partition.number), 0, size, Number(partition.firstLba) * 512);
    }
    await handle.close();
  }
  await nextBoot({ root, disk: diskPath });
  return { dir, root, disk: diskPath };
}

/** Bytes of set A's partitions and the protective MBR region, to compare before and after. */
export async function activeSetBytes(disk: string): Promise<string> {
  const { table } = await readGpt(disk);
  const data = await readFile(disk);
  const hash = createHash('sha256');
  for (const partition of table.partitions.filter((p) => p.name.endsWith('-A'))) {
    hash.update(data.subarray(Number(partition.firstLba) * 512, (Number(partition.lastLba) + 1) * 512));
  }
  return hash.digest('hex');
}
