// Uploads a raw disk image as an EBS snapshot through the EBS direct APIs (the coldsnap algorithm, spec §3).
import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { CompleteSnapshotCommand, PutSnapshotBlockCommand, StartSnapshotCommand } from '@aws-sdk/client-ebs';
import { DeleteSnapshotCommand } from '@aws-sdk/client-ec2';
import { BrlError, ExitCode } from '../core/errors.ts';
import type { AwsClients } from './clients.ts';

const GiB = 1024 ** 3;

export interface UploadProgress {
  bytesRead: number;
  sizeBytes: number;
  blocksUploaded: number;
  bytesUploaded: number;
  blocksSkipped: number;
}

export interface SnapshotUploadOptions {
  clients: AwsClients;
  region: string;
  /** A fresh stream of the raw image bytes (a decompressing stream is fine: it is read once, in order). */
  openImage: () => AsyncIterable<Uint8Array>;
  sizeBytes: number;
  description: string;
  /** Defaults to the image size rounded up to whole GiB. */
  volumeSizeGiB?: number;
  workers?: number;
  /** Attempts per block, with linear back-off `retryDelayMs × attempt` in between. */
  maxAttempts?: number;
  retryDelayMs?: number;
  /** Fail if no block completes and no input is read for this long, naming the stalled blocks (bottlerocket#2667). */
  stallTimeoutMs?: number;
  onProgress?: (progress: UploadProgress) => void;
}

export interface SnapshotUpload {
  snapshotId: string;
  region: string;
  volumeSizeGiB: number;
  blockSize: number;
  blocksUploaded: number;
  blocksSkipped: number;
  bytesUploaded: number;
  /** PutSnapshotBlock requests sent, retries included. */
  putRequests: number;
  seconds: number;
}

/** Errors that a retry cannot fix. */
const permanentErrors = new Set(['ValidationException', 'AccessDeniedException', 'ServiceQuotaExceededException']);

interface Block {
  index: number;
  data: Buffer;
}

/** Cuts the stream into blocks (the last one zero-padded) and yields only those holding a non-zero byte. */
async function* nonZeroBlocks(source: AsyncIterable<Uint8Array>, blockSize: number, counters: { bytesRead: number; blocksSkipped: number }): AsyncGenerator<Block> {
  const zeroBlock = Buffer.alloc(blockSize);
  let block = Buffer.allocUnsafe(blockSize);
  let filled = 0;
  let index = 0;
  const finishBlock = (): Block | undefined => {
    const done = index++;
    filled = 0;
    if (block.equals(zeroBlock)) {
      counters.blocksSkipped += 1;
      return undefined;
    }
    const full = { index: done, data: block };
    block = Buffer.allocUnsafe(blockSize);
    return full;
  };
  for await (const chunk of source) {
    counters.bytesRead += chunk.length;
    let offset = 0;
    while (offset < chunk.length) {
      // Fast path for block-aligned reads: look at the chunk in place and copy only non-zero blocks.
      if (filled === 0 && chunk.length - offset >= blockSize) {
        const view = Buffer.from(chunk.buffer, chunk.byteOffset + offset, blockSize);
        offset += blockSize;
        const current = index++;
        if (view.equals(zeroBlock)) counters.blocksSkipped += 1;
        else yield { index: current, data: Buffer.from(view) };
        continue;
      }
      const copied = Math.min(blockSize - filled, chunk.length - offset);
      block.set(chunk.subarray(offset, offset + copied), filled);
      filled += copied;
      offset += copied;
      if (filled === blockSize) {
        const full = finishBlock();
        if (full) yield full;
      }
    }
  }
  if (filled > 0) {
    block.fill(0, filled);
    const last = finishBlock();
    if (last) yield last;
  }
}

/**
 * PutSnapshotBlock carrying the block's SHA-256 twice: base64 as EBS's checksum, and hex as SigV4's payload hash,
 * which the signer would otherwise compute again for every block.
 */
function putBlockCommand(snapshotId: string, blockSize: number, { index, data }: Block, digest: Buffer): PutSnapshotBlockCommand {
  const command = new PutSnapshotBlockCommand({
    SnapshotId: snapshotId,
    BlockIndex: index,
    BlockData: data,
    DataLength: blockSize,
    Checksum: digest.toString('base64'),
    ChecksumAlgorithm: 'SHA256',
  });
  const payloadHash = digest.toString('hex');
  command.middlewareStack.add(
    (next) => async (args) => {
      const request = args.request as { headers?: Record<string, string> };
      if (request.headers) request.headers['x-amz-content-sha256'] = payloadHash;
      return next(args);
    },
    { step: 'build', name: 'brlPrecomputedPayloadHash' },
  );
  return command;
}

export async function uploadSnapshot(options: SnapshotUploadOptions): Promise<SnapshotUpload> {
  const started = performance.now();
  const { clients, region } = options;
  const ebs = clients.ebs(region);
  const workers = options.workers ?? 64;
  const maxAttempts = options.maxAttempts ?? 12;
  const retryDelayMs = options.retryDelayMs ?? 2000;
  const stallTimeoutMs = options.stallTimeoutMs ?? 5 * 60_000;
  const volumeSizeGiB = options.volumeSizeGiB ?? Math.max(1, Math.ceil(options.sizeBytes / GiB));
  if (volumeSizeGiB * GiB < options.sizeBytes) {
    throw new BrlError(`a ${volumeSizeGiB} GiB volume cannot hold ${options.description} (${options.sizeBytes} bytes)`, { exitCode: ExitCode.badInput, code: 'VOLUME_TOO_SMALL' });
  }

  const start = await ebs.send(new StartSnapshotCommand({ VolumeSize: volumeSizeGiB, Description: options.description, Timeout: 10, ClientToken: crypto.randomUUID() }));
  const snapshotId = start.SnapshotId;
  const blockSize = start.BlockSize;
  if (!snapshotId || !blockSize) throw new Error(`StartSnapshot in ${region} returned no SnapshotId/BlockSize`);

  const counters = { bytesRead: 0, blocksSkipped: 0 };
  const digests: Buffer[] = [];
  const inFlight = new Map<number, number>(); // block index → attempts so far
  const abort = new AbortController();
  let failure: unknown;
  let blocksUploaded = 0;
  let putRequests = 0;
  let lastProgressAt = Date.now();
  const report = () =>
    options.onProgress?.({ bytesRead: counters.bytesRead, sizeBytes: options.sizeBytes, blocksUploaded, bytesUploaded: blocksUploaded * blockSize, blocksSkipped: counters.blocksSkipped });

  const fail = (error: unknown) => {
    failure ??= error;
    abort.abort(error);
  };

  const uploadBlock = async ({ index, data }: Block, digest: Buffer): Promise<void> => {
    for (let attempt = 1; ; attempt++) {
      inFlight.set(index, attempt);
      putRequests += 1;
      try {
        await ebs.send(putBlockCommand(snapshotId, blockSize, { index, data }, digest), { abortSignal: abort.signal });
        inFlight.delete(index);
        blocksUploaded += 1;
        lastProgressAt = Date.now();
        report();
        return;
      } catch (error) {
        const name = (error as { name?: string }).name ?? '';
        if (abort.signal.aborted) return;
        if (attempt >= maxAttempts || permanentErrors.has(name)) {
          throw new BrlError(`uploading block ${index} of ${options.description} to snapshot ${snapshotId} in ${region} failed after ${attempt} attempts: ${(error as Error).message}`, {
            exitCode: ExitCode.network,
            code: 'SNAPSHOT_BLOCK_FAILED',
            cause: error,
          });
        }
        // Linear back-off rides out throttling and "snapshot does not exist" right after StartSnapshot (coldsnap#43).
        await sleep(retryDelayMs * attempt, undefined, { signal: abort.signal }).catch(() => undefined);
        if (abort.signal.aborted) return;
      }
    }
  };

  let bytesReadAtLastCheck = 0;
  const stallTimer = setInterval(() => {
    // Reading counts as progress too: long runs of empty blocks complete no request.
    if (counters.bytesRead !== bytesReadAtLastCheck) {
      bytesReadAtLastCheck = counters.bytesRead;
      lastProgressAt = Date.now();
    }
    if (Date.now() - lastProgressAt < stallTimeoutMs) return;
    const stalled = [...inFlight.entries()].map(([index, attempts]) => `${index} (attempt ${attempts})`).join(', ');
    fail(new BrlError(`upload of ${options.description} to snapshot ${snapshotId} in ${region} stalled: no block completed for ${Math.round(stallTimeoutMs / 1000)} s`, {
      hint: `blocks in flight: ${stalled || 'none (the image stream stopped)'}; check connectivity to the EBS endpoint and retry`,
      exitCode: ExitCode.network,
      code: 'SNAPSHOT_UPLOAD_STALLED',
    }));
  }, Math.min(stallTimeoutMs, 1000));

  const running = new Set<Promise<void>>();
  try {
    for await (const block of nonZeroBlocks(options.openImage(), blockSize, counters)) {
      if (abort.signal.aborted) break;
      const digest = createHash('sha256').update(block.data).digest();
      digests.push(digest);
      const task = uploadBlock(block, digest).catch(fail);
      running.add(task);
      void task.finally(() => running.delete(task));
      while (running.size >= workers) await Promise.race(running);
    }
    await Promise.all(running);
    if (failure === undefined && counters.bytesRead !== options.sizeBytes) {
      fail(new BrlError(`${options.description}: read ${counters.bytesRead} bytes, expected ${options.sizeBytes}`, { exitCode: ExitCode.badInput, code: 'IMAGE_SIZE_CHANGED' }));
    }
    if (failure !== undefined) throw failure;
    report();
    // Linear aggregation: SHA-256 over the raw per-block digests in block index order (blocks arrive in order).
    const aggregate = createHash('sha256').update(Buffer.concat(digests)).digest('base64');
    await ebs.send(new CompleteSnapshotCommand({
      SnapshotId: snapshotId,
      ChangedBlocksCount: blocksUploaded,
      Checksum: aggregate,
      ChecksumAlgorithm: 'SHA256',
      ChecksumAggregationMethod: 'LINEAR',
    }));
  } catch (error) {
    abort.abort(error);
    await Promise.allSettled(running);
    await clients.ec2(region).send(new DeleteSnapshotCommand({ SnapshotId: snapshotId })).catch(() => undefined);
    throw error;
  } finally {
    clearInterval(stallTimer);
  }
  return {
    snapshotId,
    region,
    volumeSizeGiB,
    blockSize,
    blocksUploaded,
    blocksSkipped: counters.blocksSkipped,
    bytesUploaded: blocksUploaded * blockSize,
    putRequests,
    seconds: (performance.now() - started) / 1000,
  };
}
