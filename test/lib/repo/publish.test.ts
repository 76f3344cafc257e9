// Publishing to a real S3-compatible server (s3rver) on 127.0.0.1, through a proxy that records requests and serves the multipart calls s3rver lacks.
import test, { type ExecutionContext } from 'ava';
import { createHash, randomBytes } from 'node:crypto';
import { spawn } from 'node:child_process';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';
import {
  CreateMultipartUploadCommand,
  GetObjectCommand,
  ListPartsCommand,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { BrlError, ExitCode } from '../../../src/lib/core/errors.ts';
import { parseS3Location, publishToS3 } from '../../../src/lib/repo/publish.ts';
import { listPendingUploads, multipartEtag, PartBufferPool, planParts, uploadMultipart } from '../../../src/lib/repo/s3-multipart.ts';
import { startFakeS3, type FakeS3 } from '../../fakes/s3/server.ts';
import { buildSignedRepo, tempDir } from './helpers.ts';

const MiB = 1024 * 1024;
const partSizeBytes = 5 * MiB;

async function useFakeS3(t: ExecutionContext, options: Parameters<typeof startFakeS3>[0] = {}): Promise<{ fake: FakeS3; client: S3Client }> {
  const fake = await startFakeS3(options);
  process.env.AWS_ENDPOINT_URL_S3 = fake.url;
  process.env.AWS_REGION = 'us-west-2';
  process.env.AWS_ACCESS_KEY_ID = 'S3RVER';
  process.env.AWS_SECRET_ACCESS_KEY = 'S3RVER';
  const client = new S3Client({ forcePathStyle: true });
  t.teardown(async () => {
    client.destroy();
    await fake.close();
  });
  return { fake, client };
}

/** Adds a random target of `sizeBytes` to a built repository, named by its sha256 as the store names targets. */
function addLargeTarget(outdir: string, sizeBytes: number): { relative: string; bytes: Buffer; sha256: string } {
  const bytes = randomBytes(sizeBytes);
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  const relative = `targets/${sha256}.large.img.lz4`;
  writeFileSync(join(outdir, relative), bytes);
  return { relative, bytes, sha256 };
}

async function objectSha256(client: S3Client, key: string): Promise<string> {
  const object = await client.send(new GetObjectCommand({ Bucket: 'updates', Key: key }));
  const hash = createHash('sha256');
  for await (const chunk of object.Body as AsyncIterable<Uint8Array>) hash.update(chunk);
  return hash.digest('hex');
}

async function pendingUploads(client: S3Client): Promise<string[]> {
  return (await listPendingUploads(client, 'updates', '')).map((upload) => upload.key).sort();
}

const sentParts = (fake: FakeS3, key: string, status = 200) =>
  fake.log.filter((entry) => entry.operation === 'UploadPart' && entry.key === key && entry.status === status).map((entry) => entry.partNumber!);

test.serial('publish uploads targets first and timestamp.json last, then skips unchanged objects', async (t) => {
  const { fake, client } = await useFakeS3(t);
  const built = await buildSignedRepo();
  const result = await publishToS3(built.outdir, parseS3Location('updates/bottlerocket'));
  const files = readdirSync(join(built.outdir, 'targets')).length + readdirSync(built.result.metadataDir).length;
  t.is(result.uploaded, files);
  t.is(result.partsUploaded, 0, 'small files keep single PUTs');
  const order = fake.log.filter((entry) => entry.method === 'PUT').map((entry) => entry.key.replace('bottlerocket/', ''));
  t.true(fake.log.every((entry) => entry.operation !== 'UploadPart' && entry.operation !== 'ListMultipartUploads'));
  const lastTarget = Math.max(...order.map((key, index) => (key.startsWith('targets/') ? index : -1)));
  const firstMetadata = order.findIndex((key) => key.startsWith('dev/'));
  t.true(lastTarget < firstMetadata, 'every target is uploaded before any metadata');
  t.is(order.at(-1), 'dev/x86_64/timestamp.json');
  t.true(order.indexOf(`dev/x86_64/${built.result.versions.targets}.targets.json`) < order.indexOf(`dev/x86_64/${built.result.versions.snapshot}.snapshot.json`));

  const object = await client.send(new GetObjectCommand({ Bucket: 'updates', Key: 'bottlerocket/dev/x86_64/timestamp.json' }));
  t.deepEqual(Buffer.from(await object.Body!.transformToByteArray()), readFileSync(join(built.result.metadataDir, 'timestamp.json')));

  fake.log.length = 0;
  const again = await publishToS3(built.outdir, parseS3Location('s3://updates/bottlerocket/'));
  t.is(again.uploaded, 0);
  t.is(again.unchanged, files);
  t.deepEqual(fake.log.filter((entry) => entry.method === 'PUT'), []);
});

test.serial('a file above the part size goes up in parallel parts of the part size and reads back byte-identical', async (t) => {
  const { fake, client } = await useFakeS3(t, { partDelayMs: 150 });
  const built = await buildSignedRepo();
  const large = addLargeTarget(built.outdir, 4 * partSizeBytes + 3 * MiB + 17);
  const key = `bottlerocket/${large.relative}`;

  const result = await publishToS3(built.outdir, parseS3Location('updates/bottlerocket'), { partSizeBytes, partJobs: 3 });
  t.deepEqual(result.objects.find((object) => object.key === key)?.parts, { total: 5, uploaded: 5, reused: 0 });
  t.is(result.partsUploaded, 5);
  t.is(result.partsReused, 0);
  const parts = fake.log.filter((entry) => entry.operation === 'UploadPart');
  t.deepEqual(parts.map((entry) => entry.partNumber).sort(), [1, 2, 3, 4, 5]);
  t.true(parts.every((entry) => entry.key === key), 'only the large file is uploaded in parts');
  t.deepEqual(parts.sort((a, b) => a.partNumber! - b.partNumber!).map((entry) => entry.bytes), [partSizeBytes, partSizeBytes, partSizeBytes, partSizeBytes, 3 * MiB + 17]);
  t.true(fake.maxPartsInFlight >= 2, `parts overlap (at most ${fake.maxPartsInFlight} in flight)`);
  t.true(fake.maxPartsInFlight <= 3, 'never more parts in flight than --part-jobs');
  t.is(fake.log.filter((entry) => entry.operation === 'CreateMultipartUpload').length, 1);
  t.is(await objectSha256(client, key), large.sha256);
  t.deepEqual(await pendingUploads(client), []);

  fake.log.length = 0;
  const again = await publishToS3(built.outdir, parseS3Location('updates/bottlerocket'), { partSizeBytes });
  t.is(again.uploaded, 0);
  t.deepEqual(fake.log.filter((entry) => entry.method === 'PUT' || entry.method === 'POST'), []);
});

test.serial('a part that keeps failing stops publish before any metadata; the rerun sends only the parts S3 lacks', async (t) => {
  // Pages of one entry make the rerun page through ListParts as it must for uploads above 1,000 parts.
  const { fake, client } = await useFakeS3(t, { pageSize: 1 });
  const built = await buildSignedRepo();
  const large = addLargeTarget(built.outdir, 6 * partSizeBytes - 1);
  const key = `bottlerocket/${large.relative}`;
  fake.faults.failPartNumber = 2;

  const error = await t.throwsAsync(publishToS3(built.outdir, parseS3Location('updates/bottlerocket'), { partSizeBytes, partJobs: 2 }), { instanceOf: BrlError });
  t.is(error.code, 'S3_PART_FAILED');
  t.is(error.exitCode, ExitCode.network);
  t.regex(error.message, /part 2 of 6 failed \(HTTP 500\): InternalError/);
  const storedFirst = sentParts(fake, key);
  t.true(storedFirst.length >= 1, 'the part in flight beside the failing one finished');
  t.regex(error.message, new RegExp(`${storedFirst.length} of 6 parts are stored in upload`));
  t.regex(error.hint ?? '', /rerun/);
  t.true(sentParts(fake, key, 500).length >= 2, 'the SDK retried the failing part');
  t.false(fake.log.some((entry) => entry.key.includes('/dev/')), 'no metadata was uploaded after the failed target');
  t.deepEqual(await pendingUploads(client), [key], 'the upload is kept for the rerun');

  fake.faults = {};
  fake.log.length = 0;
  const rerun = await publishToS3(built.outdir, parseS3Location('updates/bottlerocket'), { partSizeBytes, partJobs: 2 });
  const sentAgain = sentParts(fake, key);
  t.deepEqual(sentAgain.filter((n) => storedFirst.includes(n)), [], 'no finished part was sent again');
  t.deepEqual([...storedFirst, ...sentAgain].sort(), [1, 2, 3, 4, 5, 6]);
  t.is(fake.log.filter((entry) => entry.operation === 'CreateMultipartUpload').length, 0, 'the interrupted upload was resumed');
  t.is(fake.log.filter((entry) => entry.operation === 'ListParts').length, storedFirst.length, 'every page of parts was read');
  t.deepEqual(rerun.objects.find((object) => object.key === key)?.parts, { total: 6, uploaded: 6 - storedFirst.length, reused: storedFirst.length });
  t.is(rerun.partsReused, storedFirst.length);
  t.is(await objectSha256(client, key), large.sha256);
  t.deepEqual(await pendingUploads(client), []);
  t.true(fake.log.some((entry) => entry.key === 'bottlerocket/dev/x86_64/timestamp.json' && entry.operation === 'PutObject'));
});

test.serial('a publish killed mid-upload is resumed by the rerun without sending a stored part again', async (t) => {
  const { fake, client } = await useFakeS3(t, { partDelayMs: 400 });
  const built = await buildSignedRepo();
  const large = addLargeTarget(built.outdir, 6 * partSizeBytes);
  const key = `bottlerocket/${large.relative}`;
  const publishModule = pathToFileURL(join(import.meta.dirname, '../../../src/lib/repo/publish.ts')).href;
  const script = `const { parseS3Location, publishToS3 } = await import(${JSON.stringify(publishModule)});
    await publishToS3(${JSON.stringify(built.outdir)}, parseS3Location('updates/bottlerocket'), { partSizeBytes: ${partSizeBytes}, partJobs: 2 });`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: 'inherit' });
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve(signal ?? code)));
  while (sentParts(fake, key).length < 2) await sleep(10);
  child.kill('SIGKILL');
  t.is(await exited, 'SIGKILL');
  // A part whose body was all sent before the kill is still stored by S3: count it as stored.
  await fake.idle();

  const { uploadId } = (await listPendingUploads(client, 'updates', 'bottlerocket/')).find((upload) => upload.key === key)!;
  const stored = ((await client.send(new ListPartsCommand({ Bucket: 'updates', Key: key, UploadId: uploadId }))).Parts ?? []).map((part) => part.PartNumber!);
  t.true(stored.length >= 2 && stored.length < 6, `${stored.length} parts stored when the publish was killed`);
  fake.log.length = 0;
  const rerun = await publishToS3(built.outdir, parseS3Location('updates/bottlerocket'), { partSizeBytes, partJobs: 2 });
  const sentAgain = sentParts(fake, key);
  t.deepEqual(sentAgain.filter((n) => stored.includes(n)), [], 'no stored part was sent again');
  t.deepEqual([...stored, ...sentAgain].sort(), [1, 2, 3, 4, 5, 6]);
  t.is(rerun.partsReused, stored.length);
  t.is(await objectSha256(client, key), large.sha256);
});

test.serial('a resumed upload keeps parts whose MD5 matches the file and re-sends a stored part with other bytes', async (t) => {
  // As a killed process leaves it: an upload with some parts, one of them wrong, and no local record.
  const { fake, client } = await useFakeS3(t);
  const built = await buildSignedRepo();
  const large = addLargeTarget(built.outdir, 3 * partSizeBytes + 1);
  const key = `bottlerocket/${large.relative}`;
  const { UploadId } = await client.send(new CreateMultipartUploadCommand({ Bucket: 'updates', Key: key }));
  const part = (n: number) => large.bytes.subarray((n - 1) * partSizeBytes, n * partSizeBytes);
  await client.send(new UploadPartCommand({ Bucket: 'updates', Key: key, UploadId, PartNumber: 1, Body: part(1) }));
  await client.send(new UploadPartCommand({ Bucket: 'updates', Key: key, UploadId, PartNumber: 3, Body: Buffer.alloc(partSizeBytes, 7) }));
  fake.log.length = 0;

  const result = await publishToS3(built.outdir, parseS3Location('updates/bottlerocket'), { partSizeBytes });
  t.deepEqual(sentParts(fake, key).sort(), [2, 3, 4]);
  t.deepEqual(result.objects.find((object) => object.key === key)?.parts, { total: 4, uploaded: 3, reused: 1 });
  t.is(await objectSha256(client, key), large.sha256);
});

test.serial('pending uploads that match no file are aborted: superseded ones always, orphans with abortOrphans once old enough', async (t) => {
  // Pages of one upload make publish page through ListMultipartUploads.
  const { fake, client } = await useFakeS3(t, { pageSize: 1 });
  const built = await buildSignedRepo();
  const large = addLargeTarget(built.outdir, partSizeBytes + 1);
  const key = `bottlerocket/${large.relative}`;
  const start = async (uploadKey: string, partBytes: number): Promise<string> => {
    const { UploadId } = await client.send(new CreateMultipartUploadCommand({ Bucket: 'updates', Key: uploadKey }));
    await client.send(new UploadPartCommand({ Bucket: 'updates', Key: uploadKey, UploadId, PartNumber: 1, Body: Buffer.alloc(partBytes, 1) }));
    return UploadId!;
  };
  // Cut at another part size, so it cannot be resumed.
  await start(key, MiB);
  const orphan = await start('bottlerocket/targets/0000.removed.img', MiB);
  await start('elsewhere/other.img', MiB);

  fake.log.length = 0;
  const first = await publishToS3(built.outdir, parseS3Location('updates/bottlerocket'), { partSizeBytes });
  t.is(fake.log.filter((entry) => entry.operation === 'ListMultipartUploads').length, 2, 'both uploads under the prefix, a page each');
  t.is(first.orphansAborted, 1, 'the upload of the same key with another layout was replaced');
  t.is(first.partsReused, 0);
  t.deepEqual(await pendingUploads(client), ['bottlerocket/targets/0000.removed.img', 'elsewhere/other.img']);

  const young = await publishToS3(built.outdir, parseS3Location('updates/bottlerocket'), { partSizeBytes, abortOrphans: true });
  t.is(young.orphansAborted, 0, 'an upload started less than a day ago may belong to a publish still running');

  await fake.ageUpload(orphan, 25 * 3600 * 1000);
  fake.log.length = 0;
  const old = await publishToS3(built.outdir, parseS3Location('updates/bottlerocket'), { partSizeBytes, abortOrphans: true });
  t.is(old.orphansAborted, 1);
  t.deepEqual(fake.log.filter((entry) => entry.operation === 'AbortMultipartUpload').map((entry) => entry.key), ['bottlerocket/targets/0000.removed.img']);
  t.deepEqual(await pendingUploads(client), ['elsewhere/other.img'], 'uploads outside the prefix are left alone');
  t.is(await objectSha256(client, key), large.sha256);
});

test.serial('metadata with a multipart ETag is compared at the part size, or read back when cut at another one', async (t) => {
  const { fake } = await useFakeS3(t);
  const built = await buildSignedRepo();
  const location = parseS3Location('updates/bottlerocket');
  await publishToS3(built.outdir, location);
  const metadataKey = (name: string) => `bottlerocket/dev/x86_64/${name}`;
  const rootName = readdirSync(built.result.metadataDir).find((name) => name.endsWith('.root.json'))!;
  const timestampBytes = readFileSync(join(built.result.metadataDir, 'timestamp.json'));
  const md5 = (data: Uint8Array) => createHash('md5').update(data).digest();
  // As S3 lists objects completed from one part, and from three parts of some other size.
  fake.listedEtags.set(metadataKey('timestamp.json'), `${md5(md5(timestampBytes)).toString('hex')}-1`);
  fake.listedEtags.set(metadataKey(rootName), `${'f'.repeat(32)}-3`);
  fake.log.length = 0;
  const again = await publishToS3(built.outdir, location);
  t.is(again.uploaded, 0);
  t.deepEqual(fake.log.filter((entry) => entry.operation === 'GetObject').map((entry) => entry.key), [metadataKey(rootName)], 'only the root cut otherwise was read back');

  fake.listedEtags.set(metadataKey(rootName), `${'f'.repeat(32)}-1`);
  await t.throwsAsync(publishToS3(built.outdir, location), { instanceOf: BrlError, code: 'ROOT_CONFLICT' });
});

test.serial('part memory is the pool: at most part-jobs buffers of the part size, whatever the file size', async (t) => {
  const { fake, client } = await useFakeS3(t, { partDelayMs: 50 });
  const path = join(tempDir('brl-parts-'), 'large.img');
  const bytes = randomBytes(8 * partSizeBytes);
  writeFileSync(path, bytes);
  const pool = new PartBufferPool(partSizeBytes, 2);
  const outcome = await uploadMultipart(client, {
    bucket: 'updates', key: 'pool/large.img', path, sizeBytes: bytes.length, contentType: 'application/octet-stream', cacheControl: 'no-cache', pending: [], pool,
  });
  t.is(outcome.partsUploaded, 8);
  t.true(pool.allocatedBuffers <= 2, `${pool.allocatedBuffers} buffers of ${partSizeBytes} bytes for a file of ${bytes.length}`);
  t.true(fake.maxPartsInFlight <= 2);
  t.is(await objectSha256(client, 'pool/large.img'), createHash('sha256').update(bytes).digest('hex'));
});

test('parts follow S3 limits: 5 MiB to 5 GiB, at most 10,000 of them', async (t) => {
  t.deepEqual(planParts(12 * MiB, 5 * MiB, 'f').map((part) => [part.start, part.length]), [[0, 5 * MiB], [5 * MiB, 5 * MiB], [10 * MiB, 2 * MiB]]);
  t.throws(() => planParts(10_001 * 5 * MiB, 5 * MiB, 'huge.img'), { instanceOf: BrlError, code: 'TOO_MANY_PARTS', message: /huge\.img.*10001 parts/ });
  t.is((t.throws(() => planParts(10_001 * 5 * MiB, 5 * MiB, 'huge.img')) as BrlError).hint, 'raise --part-size to at least 6 MiB');
  await t.throwsAsync(publishToS3(tempDir(), parseS3Location('updates'), { partSizeBytes: MiB }), { instanceOf: BrlError, code: 'BAD_PART_SIZE' });
});

test('a multipart ETag is the MD5 of the part MD5s with the part count', async (t) => {
  const path = join(tempDir('brl-etag-'), 'file');
  const bytes = randomBytes(2 * partSizeBytes + 5);
  writeFileSync(path, bytes);
  const md5 = (data: Uint8Array) => createHash('md5').update(data).digest();
  const expected = md5(Buffer.concat([0, 1, 2].map((i) => md5(bytes.subarray(i * partSizeBytes, (i + 1) * partSizeBytes))))).toString('hex');
  t.is(await multipartEtag(path, bytes.length, partSizeBytes), `${expected}-3`);
});

test('S3 locations parse as BUCKET[/PREFIX]', (t) => {
  t.deepEqual(parseS3Location('bucket'), { bucket: 'bucket', prefix: '' });
  t.deepEqual(parseS3Location('s3://my.bucket/a/b/'), { bucket: 'my.bucket', prefix: 'a/b' });
  t.throws(() => parseS3Location('Bad_Bucket'), { message: /not BUCKET\/PREFIX/ });
});
