// A Secure Boot host (its image carries the GRUB key) takes only an update whose BOOT signatures verify with that key, and refuses any other before writing anything.
import test, { type ExecutionContext } from 'ava';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BrlError, ExitCode } from '../../../src/lib/core/errors.ts';
import { readGpt } from '../../../src/lib/image/gpt.ts';
import { signpostStatus } from '../../../src/lib/signpost/index.ts';
import { applyUpdate } from '../../../src/lib/updog/index.ts';
import { buildRelease, makeGrubKey, makeHost, startRepository, type ReleaseImages, type ReleaseOptions, type TestGrubKey } from './fixtures.ts';

const fast = { transport: { initialBackoffMs: 5, maxBackoffMs: 20, connectTimeoutMs: 2000, idleTimeoutMs: 2000 } };

let project: TestGrubKey;
let otherProject: TestGrubKey;
test.before(async () => {
  [project, otherProject] = await Promise.all([makeGrubKey('project'), makeGrubKey('other project')]);
});

async function partitionBytes(disk: string, name: string, length?: number): Promise<Buffer> {
  const { table } = await readGpt(disk);
  const partition = table.partitions.find((p) => p.name === name)!;
  const start = Number(partition.firstLba) * 512;
  return (await readFile(disk)).subarray(start, start + (length ?? Number(partition.lastLba - partition.firstLba + 1n) * 512));
}

/** A host trusting `project`'s GRUB key, offered `release` (1.0.0 → 1.1.0). */
async function secureBootHostOffered(t: ExecutionContext, release: ReleaseImages) {
  const repo = await startRepository([release], {}, { '(1.0.0, 1.1.0)': [] });
  t.teardown(() => repo.server.close());
  const host = await makeHost(repo, '1.0.0', {}, {}, { grubKeyring: project.keyring });
  return { repo, host };
}

test('a Secure Boot host applies an update whose BOOT verifies with its key, writing the BOOT bytes it downloaded once', async (t) => {
  const release = await buildRelease('1.1.0', { grubKey: project });
  const { repo, host } = await secureBootHostOffered(t, release);
  const result = await applyUpdate({ root: host.root, disk: host.disk, activate: true, ...fast });
  t.is(result.status, 'activated');
  t.deepEqual(result.bytesWritten, { root: release.root.length, boot: release.boot.length, hash: release.hash.length });
  t.true((await partitionBytes(host.disk, 'BOTTLEROCKET-BOOT-B', release.boot.length)).equals(release.boot));
  t.true((await partitionBytes(host.disk, 'BOTTLEROCKET-ROOT-B', release.root.length)).equals(release.root));
  // Besides the 15-byte size probe (a range request), BOOT was fetched once: what was verified is what was written.
  t.is(repo.server.requestsFor(repo.targetPath(release.names.boot)).filter((request) => request.range === undefined).length, 1);
  t.is((await signpostStatus(host)).nextSet, 'B');
});

/** Applies a release built with `options` on a Secure Boot host and proves that it was refused before anything was written. */
async function refusedBeforeWriting(t: ExecutionContext, options: ReleaseOptions): Promise<{ error: BrlError; release: ReleaseImages }> {
  const release = await buildRelease('1.1.0', options);
  const { host } = await secureBootHostOffered(t, release);
  const disk = await readFile(host.disk);
  const inactive = await Promise.all(['BOOT', 'ROOT', 'HASH'].map((role) => partitionBytes(host.disk, `BOTTLEROCKET-${role}-B`)));
  const error = await t.throwsAsync(applyUpdate({ root: host.root, disk: host.disk, activate: true, ...fast }), { instanceOf: BrlError });
  const after = await Promise.all(['BOOT', 'ROOT', 'HASH'].map((role) => partitionBytes(host.disk, `BOTTLEROCKET-${role}-B`)));
  t.true(after.every((bytes, index) => bytes.equals(inactive[index]!)), 'the inactive partitions are byte-identical');
  t.true((await readFile(host.disk)).equals(disk), 'nothing on the disk changed, the partition table and its flags included');
  t.false(existsSync(join(host.root, 'var', 'lib', 'bottlerocket-migrations')), 'no migrations were staged');
  return { error: error!, release };
}

/** A refusal by signature: exit code 6, the message naming the update's BOOT target first. */
async function refusedBySignature(t: ExecutionContext, options: ReleaseOptions): Promise<BrlError> {
  const { error, release } = await refusedBeforeWriting(t, options);
  t.is(error.exitCode, ExitCode.verifyFailed);
  t.true(error.message.startsWith(`the update's BOOT image ${release.names.boot}: `), error.message);
  return error;
}

test('an update whose grub.cfg root hash was changed after signing is refused before anything is written', async (t) => {
  const error = await refusedBySignature(t, { grubKey: project, tamperAfterSigning: 'root-hash' });
  t.is(error.code, 'BAD_SIGNATURE');
  t.regex(error.message, /\/grub\/grub\.cfg\.sig: (does not match the data|the RSA signature does not verify)/);
});

test('an update signed with another project\'s GRUB key is refused before anything is written', async (t) => {
  const error = await refusedBySignature(t, { grubKey: otherProject });
  t.is(error.code, 'BAD_SIGNATURE');
  t.regex(error.message, /\/grub\/grub\.cfg\.sig: was made by key [0-9A-F]+, not by the trusted key [0-9A-F]+/);
});

test('an update whose initrd has no .sig is refused before anything is written', async (t) => {
  const error = await refusedBySignature(t, { grubKey: project, tamperAfterSigning: 'drop-initrd-sig' });
  t.is(error.code, 'UNSIGNED_BOOT_FILE');
  t.regex(error.message, /\/initrd\.img\.sig is missing \(GRUB would refuse an unsigned \/initrd\.img\)/);
});

test('an unsigned update is refused by a Secure Boot host before anything is written', async (t) => {
  const error = await refusedBySignature(t, {});
  t.is(error.code, 'UNSIGNED_BOOT_FILE');
  t.regex(error.message, /\/grub\/grub\.cfg\.sig is missing/);
});

test('a BOOT image larger than the BOOT partition is refused before anything is written', async (t) => {
  // 3 MiB of filesystem for a 2 MiB partition; the frame declares no size, so only decoding can tell.
  const { error } = await refusedBeforeWriting(t, { grubKey: project, bootKiB: 3072 });
  t.is(error.code, 'BOOT_IMAGE_TOO_LARGE');
  t.is(error.exitCode, ExitCode.conflict);
  t.regex(error.message, /boot\.ext4\.lz4: the decoded image is larger than the 2097152-byte BOOT partition/);
});
