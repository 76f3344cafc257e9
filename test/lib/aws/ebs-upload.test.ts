import test from 'ava';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { uploadSnapshot } from '../../../src/lib/aws/ebs-upload.ts';
import { describeDiskImage, openRawImage } from '../../../src/lib/aws/images.ts';
import { expectedBlocks, lz4Compress, makeSparseImage } from '../../fakes/aws/fixtures.ts';
import { withFakeAws } from '../../fakes/aws/harness.ts';

const MiB = 1024 * 1024;

/** Block index → base64 digest, in index order (Map equality depends on insertion order). */
function sortedBlocks(blocks: Map<number, Buffer | string> | undefined): [number, string][] {
  return [...(blocks ?? new Map())].map(([i, d]): [number, string] => [i, typeof d === 'string' ? d : d.toString('base64')]).sort(([a], [b]) => a - b);
}

async function sparseImage(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'brl-ebs-'));
  const path = join(dir, 'disk.img');
  await makeSparseImage(path, 5 * MiB + 123, [[0, 1000], [2 * MiB - 10, 20], [4 * MiB, MiB], [5 * MiB, 123]]);
  return path;
}

test.serial('uploads exactly the non-zero blocks, each with the checksum the endpoint verifies', async (t) => {
  const path = await sparseImage();
  await withFakeAws({}, async (fake, clients) => {
    const image = await describeDiskImage(path);
    const result = await uploadSnapshot({ clients, region: 'us-west-2', openImage: () => openRawImage(image), sizeBytes: image.sizeBytes, description: 'disk.img', workers: 4 });
    const snapshot = fake.state.snapshots.get(result.snapshotId);
    const expected = await expectedBlocks(path, 512 * 1024);
    t.deepEqual([...(snapshot?.blocks.keys() ?? [])].sort((a, b) => a - b), [...expected.keys()]);
    t.deepEqual(sortedBlocks(snapshot?.blocks), sortedBlocks(expected));
    t.is(result.blocksUploaded, expected.size);
    t.is(result.blocksSkipped, 11 - expected.size);
    t.is(fake.state.count('PutSnapshotBlock'), expected.size);
    t.is(snapshot?.signedPayloadPuts, expected.size, 'each block is signed with its precomputed SHA-256, which the endpoint checked');
    t.is(snapshot?.volumeSizeGiB, 1);
    t.not(snapshot?.state, 'uploading', 'CompleteSnapshot accepted the linear aggregated checksum');
  });
});

test.serial('an lz4-compressed image uploads the same blocks as its raw original', async (t) => {
  const path = await sparseImage();
  await lz4Compress(path, `${path}.lz4`);
  await withFakeAws({}, async (fake, clients) => {
    const image = await describeDiskImage(`${path}.lz4`);
    t.is(image.sizeBytes, 5 * MiB + 123);
    const result = await uploadSnapshot({ clients, region: 'eu-west-1', openImage: () => openRawImage(image), sizeBytes: image.sizeBytes, description: 'disk.img.lz4' });
    t.deepEqual(sortedBlocks(fake.state.snapshots.get(result.snapshotId)?.blocks), sortedBlocks(await expectedBlocks(path, 512 * 1024)));
    t.is(fake.state.snapshots.get(result.snapshotId)?.region, 'eu-west-1');
  });
});

test.serial('rides out "snapshot does not exist" after StartSnapshot, throttling and server errors', async (t) => {
  const path = await sparseImage();
  await withFakeAws({ snapshotNotFoundPuts: 3 }, async (fake, clients) => {
    fake.state.faults.push({ operation: 'PutSnapshotBlock', kind: 'throttle', times: 2 }, { operation: 'PutSnapshotBlock', kind: 'server-error', times: 2 });
    const image = await describeDiskImage(path);
    const result = await uploadSnapshot({ clients, region: 'us-west-2', openImage: () => openRawImage(image), sizeBytes: image.sizeBytes, description: 'disk.img', retryDelayMs: 5 });
    const expected = await expectedBlocks(path, 512 * 1024);
    t.is(fake.state.snapshots.get(result.snapshotId)?.blocks.size, expected.size);
    t.true(result.putRequests >= expected.size + 3, `retried: ${result.putRequests} requests for ${expected.size} blocks`);
    t.true(fake.state.count('PutSnapshotBlock') >= expected.size + 7);
  });
});

test.serial('a block that keeps failing fails the upload, names the block and deletes the snapshot', async (t) => {
  const path = await sparseImage();
  await withFakeAws({ snapshotNotFoundPuts: 1000 }, async (fake, clients) => {
    const image = await describeDiskImage(path);
    const error = await t.throwsAsync(
      uploadSnapshot({ clients, region: 'us-west-2', openImage: () => openRawImage(image), sizeBytes: image.sizeBytes, description: 'disk.img', retryDelayMs: 1, maxAttempts: 3 }),
    );
    t.regex(error?.message ?? '', /uploading block \d+ of disk\.img to snapshot snap-\w+ in us-west-2 failed after 3 attempts/);
    t.is(fake.state.snapshots.size, 0);
    t.is(fake.state.count('DeleteSnapshot'), 1);
  });
});

test.serial('a stalled upload fails with the stalled blocks and their attempts', async (t) => {
  const path = await sparseImage();
  await withFakeAws({ snapshotNotFoundPuts: 1000 }, async (_fake, clients) => {
    const image = await describeDiskImage(path);
    const error = await t.throwsAsync(
      uploadSnapshot({ clients, region: 'us-west-2', openImage: () => openRawImage(image), sizeBytes: image.sizeBytes, description: 'disk.img', retryDelayMs: 100, stallTimeoutMs: 300, workers: 2 }),
    );
    t.regex(error?.message ?? '', /stalled: no block completed/);
    t.regex((error as { hint?: string }).hint ?? '', /blocks in flight: 0 \(attempt \d+\), 3 \(attempt \d+\)/);
  });
});
