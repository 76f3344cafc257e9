// Every attack is refused twice: by `brl repo validate`'s library and by the independent tuf-js client.
import test from 'ava';
import { copyFileSync, readFileSync, readdirSync, writeFileSync, mkdirSync } from 'node:fs';
import { basename, join } from 'node:path';
import { serveDirectory } from '../../../src/lib/repo/serve.ts';
import { DirectoryReader } from '../../../src/lib/repo/reader.ts';
import { validateRepository } from '../../../src/lib/repo/validate.ts';
import { addRootKey, editRootFile, readRootFile, rootHistoryPath, setRoleThreshold, signRootFile } from '../../../src/lib/repo/root-file.ts';
import { configuredTrustRoot, signRepository } from '../../../src/lib/repo/maintain.ts';
import { repoLayout } from '../../../src/lib/repo/layout.ts';
import { parseTimestamp } from '../../../src/lib/tuf/snapshot.ts';
import { parseTargets } from '../../../src/lib/tuf/targets.ts';
import { serializeEnvelope } from '../../../src/lib/tuf/metadata.ts';
import { signEnvelope } from '../../../src/lib/tuf/sign.ts';
import { nowSeconds } from '../../../src/lib/tuf/time.ts';
import type { Signer } from '../../../src/lib/signing/signer.ts';
import { buildSignedRepo, makeKey, makeRoot, tempDir, tufJsClient, type BuiltRepo } from './helpers.ts';

const day = 86_400;

/** tuf-js does not export its error classes; its errors keep their class names on the constructor. */
async function tufJsRefuses(t: { throwsAsync: (p: Promise<unknown>) => Promise<unknown>; is: (a: unknown, b: unknown) => void; regex: (a: string, r: RegExp) => void }, promise: Promise<unknown>, errorClass: string, message: RegExp): Promise<void> {
  const error = (await t.throwsAsync(promise)) as Error;
  t.is(error.constructor.name, errorClass);
  t.regex(error.message, message);
}

async function validate(built: BuiltRepo, options: { checkTargets?: boolean; trustedRootPath?: string } = {}) {
  const layout = repoLayout(built.outdir, 'dev', 'x86_64');
  return validateRepository({
    reader: new DirectoryReader(layout.metadataDir, layout.targetsDir),
    trustedRoot: await readRootFile(options.trustedRootPath ?? built.rootPath),
    now: nowSeconds(),
    checkTargets: options.checkTargets ?? false,
  });
}

async function client(built: BuiltRepo, t: { teardown: (fn: () => Promise<void>) => void }, rootBytes?: Buffer, metadataDir?: string) {
  const server = await serveDirectory(built.outdir);
  t.teardown(() => server.close());
  return (await tufJsClient(server.url, rootBytes ?? readFileSync(built.rootPath), metadataDir)).updater;
}

const metadataDir = (built: BuiltRepo) => built.result.metadataDir;
const timestampPath = (built: BuiltRepo) => join(metadataDir(built), 'timestamp.json');
const targetsPath = (built: BuiltRepo) => join(metadataDir(built), `${built.result.versions.targets}.targets.json`);

async function resignTimestamp(built: BuiltRepo, signers: Signer[], keep = false): Promise<void> {
  const timestamp = parseTimestamp(readFileSync(timestampPath(built)), 'timestamp.json');
  const signed = await signEnvelope({ ...timestamp, signatures: keep ? timestamp.signatures : [] }, signers);
  writeFileSync(timestampPath(built), serializeEnvelope(signed));
}

test('the untampered repository passes validate --targets and the tuf-js client', async (t) => {
  const built = await buildSignedRepo();
  const result = await validate(built, { checkTargets: true });
  t.is(result.targetsChecked, result.targetCount);
  const updater = await client(built, t);
  await t.notThrowsAsync(updater.refresh());
});

test('expired metadata is refused', async (t) => {
  const built = await buildSignedRepo({ now: nowSeconds() - 10 * day });
  await t.throwsAsync(validate(built), { message: /timestamp metadata expired at \S+Z/, instanceOf: Error });
  const updater = await client(built, t);
  await tufJsRefuses(t, updater.refresh(), 'ExpiredMetadataError', /timestamp\.json is expired/);
});

test('a version rollback is refused', async (t) => {
  const dir = tempDir();
  const first = await buildSignedRepo({ dir, now: nowSeconds() - 60 });
  const oldTimestamp = readFileSync(timestampPath(first));
  const second = await buildSignedRepo({ dir, signer: first.signer, rootPath: first.rootPath, version: '1.1.0' });
  t.true(second.result.versions.timestamp > first.result.versions.timestamp);
  // A client that saw the new release keeps its metadata, as hosts do.
  const clientState = tempDir('brl-tufjs-state-');
  await (await client(second, t, readFileSync(first.rootPath), clientState)).refresh();
  writeFileSync(timestampPath(second), oldTimestamp);
  await t.throwsAsync(validate(second), { message: /pins snapshot version \d+, but the newer \d+\.snapshot\.json exists: a version rollback/ });
  const updater = await client(second, t, readFileSync(first.rootPath), clientState);
  await tufJsRefuses(t, updater.refresh(), 'BadVersionError', /New timestamp version \d+ is less than current version \d+/);
});

test('targets metadata that differs from what snapshot pins is refused', async (t) => {
  const built = await buildSignedRepo();
  const targets = parseTargets(readFileSync(targetsPath(built)), 'targets.json');
  targets.signed.targets['extra.bin'] = { length: 1, hashes: { sha256: '00'.repeat(32) } };
  writeFileSync(targetsPath(built), serializeEnvelope(await signEnvelope({ ...targets, signatures: [] }, [built.signer])));
  await t.throwsAsync(validate(built), { message: /targets\.json: (length \d+ differs from the \d+ bytes|sha256 \w+ differs from the pinned)/ });
  const updater = await client(built, t);
  await t.throwsAsync(updater.refresh(), { message: /length|hash/i });
});

test('signatures below the threshold are refused', async (t) => {
  const dir = tempDir();
  const first = await makeKey(dir, 'first');
  const second = await makeKey(dir, 'second');
  const rootPath = await makeRoot(dir, first);
  await editRootFile(rootPath, (signed) => {
    addRootKey(signed, second.publicKey, ['timestamp']);
    setRoleThreshold(signed, 'timestamp', 2);
  });
  await signRootFile(rootPath, [first]);
  const built = await buildSignedRepo({ dir, signer: first, rootPath, sign: false });
  await signRepository(repoLayout(built.outdir, 'dev', 'x86_64'), await configuredTrustRoot(rootPath), [first, second], nowSeconds());
  const timestamp = parseTimestamp(readFileSync(timestampPath(built)), 'timestamp.json');
  writeFileSync(timestampPath(built), serializeEnvelope({ ...timestamp, signatures: timestamp.signatures.slice(0, 1) }));
  await t.throwsAsync(validate(built), { message: /timestamp\.json: 1 valid signature\(s\) of 2 required by root v2/ });
  const updater = await client(built, t, readFileSync(rootHistoryPath(rootPath, 1)));
  await tufJsRefuses(t, updater.refresh(), 'UnsignedMetadataError', /timestamp was signed by 1\/2 keys/);
});

test('metadata signed by a key that is not in root is refused', async (t) => {
  const built = await buildSignedRepo();
  const stranger = await makeKey(built.dir, 'stranger');
  await resignTimestamp(built, [stranger]);
  await t.throwsAsync(validate(built), { message: new RegExp(`signed by key\\(s\\) not in root v1 for timestamp: ${stranger.keyId.slice(0, 16)}`) });
  const updater = await client(built, t);
  await tufJsRefuses(t, updater.refresh(), 'UnsignedMetadataError', /timestamp was signed by 0\/1 keys/);
  await t.throwsAsync(signRepository(repoLayout(built.outdir, 'dev', 'x86_64'), await configuredTrustRoot(built.rootPath), [stranger], nowSeconds()), {
    message: /key \w+ \(file:\/\/.*stranger\.pem\) is not in root v1/,
  });
});

test('a target whose bytes differ from its hash or length is refused', async (t) => {
  const built = await buildSignedRepo();
  const targetsDir = built.result.targetsDir;
  const boot = readdirSync(targetsDir).find((name) => name.endsWith('-boot.ext4.lz4'))!;
  const root = readdirSync(targetsDir).find((name) => name.endsWith('-root.ext4.lz4'))!;
  const bootBytes = readFileSync(join(targetsDir, boot));
  bootBytes[0] = bootBytes[0]! ^ 0xff;
  writeFileSync(join(targetsDir, boot), bootBytes);
  await t.throwsAsync(validate(built, { checkTargets: true }), { message: /target bottlerocket-\S+-boot\.ext4\.lz4: sha256 \w+ differs from \w+ in targets\.json/ });
  const updater = await client(built, t);
  await updater.refresh();
  const bootInfo = (await updater.getTargetInfo(boot.slice(65)))!;
  await t.throwsAsync(updater.downloadTarget(bootInfo, join(tempDir(), 'boot')), { message: /hash/i });

  writeFileSync(join(targetsDir, boot), readFileSync(built.images.boot));
  writeFileSync(join(targetsDir, root), Buffer.concat([readFileSync(built.images.root), Buffer.from('more')]));
  await t.throwsAsync(validate(built, { checkTargets: true }), { message: /target bottlerocket-\S+-root\.ext4\.lz4: length \d+ differs/ });
  const rootInfo = (await updater.getTargetInfo(root.slice(65)))!;
  await tufJsRefuses(t, updater.downloadTarget(rootInfo, join(tempDir(), 'root')), 'DownloadLengthMismatchError', /Max length reached/);
});

test('a root rotation not signed by a threshold of the old root is refused; a proper one is followed', async (t) => {
  const dir = tempDir();
  const oldKey = await makeKey(dir, 'old');
  const newKey = await makeKey(dir, 'new');
  const rootPath = await makeRoot(dir, oldKey);
  const firstRoot = readFileSync(rootPath);
  await editRootFile(rootPath, (signed) => {
    for (const role of ['root', 'targets', 'snapshot', 'timestamp'] as const) signed.roles[role].keyids = [];
    delete signed.keys[oldKey.keyId];
    addRootKey(signed, newKey.publicKey, []);
  });
  t.deepEqual(readFileSync(rootHistoryPath(rootPath, 1)), firstRoot, 'the signed v1 was kept as 1.root.json');
  await signRootFile(rootPath, [newKey]);
  // brl itself will not publish a rotation the old root did not sign.
  await t.throwsAsync(buildSignedRepo({ dir, signer: newKey, rootPath }), { message: /root rotation to v2 is not signed by a threshold of the old root's keys/ });

  // An attacker's repository: the v2 root alone (signed by the new key only) plus the real v1.
  const badDir = join(dir, 'bad');
  mkdirSync(join(badDir, 'roles'), { recursive: true });
  copyFileSync(rootPath, join(badDir, 'roles', 'root.json'));
  const bad = await buildSignedRepo({ dir: badDir, signer: newKey, rootPath: join(badDir, 'roles', 'root.json') });
  writeFileSync(join(metadataDir(bad), '1.root.json'), firstRoot);
  const trustedV1 = join(dir, 'trusted-v1.json');
  writeFileSync(trustedV1, firstRoot);
  await t.throwsAsync(validate(bad, { trustedRootPath: trustedV1 }), { message: /root rotation to v2 is not signed by a threshold of the old root's keys: .*0 valid signature\(s\) of 1 required by the previous root \(v1\)/ });
  await tufJsRefuses(t, (await client(bad, t, firstRoot)).refresh(), 'UnsignedMetadataError', /root was signed by 0\/1 keys/);

  const signed = await signRootFile(rootPath, [oldKey]);
  t.true(signed.complete);
  const good = await buildSignedRepo({ dir: join(dir, 'good'), signer: newKey, rootPath: copyRoots(rootPath, join(dir, 'good')) });
  const result = await validate(good, { trustedRootPath: trustedV1 });
  t.is(result.rootVersion, 2);
  t.deepEqual(readdirSync(good.result.metadataDir).filter((name) => name.endsWith('.root.json')).sort(), ['1.root.json', '2.root.json']);
  await t.notThrowsAsync((await client(good, t, firstRoot)).refresh());
});

/** Copies a root file and its history into another fixture directory. */
function copyRoots(rootPath: string, dir: string): string {
  mkdirSync(join(dir, 'roles'), { recursive: true });
  const destination = join(dir, 'roles', basename(rootPath));
  copyFileSync(rootPath, destination);
  copyFileSync(rootHistoryPath(rootPath, 1), rootHistoryPath(destination, 1));
  return destination;
}
