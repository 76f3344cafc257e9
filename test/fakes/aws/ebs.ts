// EBS direct APIs (REST-JSON): StartSnapshot, PutSnapshotBlock and CompleteSnapshot, verifying every checksum.
import { createHash } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type { FakeAwsState, FakeSnapshot } from './state.ts';
import { FakeServiceError } from './errors.ts';

const GiB = 1024 ** 3;

export interface EbsResponse {
  status: number;
  headers?: Record<string, string>;
  json?: unknown;
}

function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name.toLowerCase()];
  return Array.isArray(value) ? value[0] : value;
}

function snapshotOrThrow(state: FakeAwsState, region: string, id: string): FakeSnapshot {
  const snapshot = state.snapshots.get(id);
  if (!snapshot || snapshot.region !== region) {
    throw new FakeServiceError('ResourceNotFoundException', `The snapshot '${id}' does not exist.`, 404);
  }
  return snapshot;
}

function startSnapshot(state: FakeAwsState, region: string, body: Buffer): EbsResponse {
  const request = JSON.parse(body.toString('utf8') || '{}') as { VolumeSize?: number; Description?: string; ClientToken?: string; Timeout?: number };
  if (!Number.isInteger(request.VolumeSize) || (request.VolumeSize ?? 0) < 1) {
    throw new FakeServiceError('ValidationException', 'VolumeSize must be a positive integer', 400);
  }
  const existing = [...state.snapshots.values()].find((s) => s.clientToken !== undefined && s.clientToken === request.ClientToken);
  const snapshot: FakeSnapshot = existing ?? {
    id: state.newId('snap'),
    region,
    ownerId: state.options.accountId,
    volumeSizeGiB: request.VolumeSize ?? 1,
    blockSize: state.options.blockSize,
    description: request.Description ?? '',
    state: 'uploading',
    blocks: new Map(),
    bytesWritten: 0,
    signedPayloadPuts: 0,
    notFoundPutsLeft: state.options.snapshotNotFoundPuts,
    describesUntilCompleted: state.options.snapshotPendingDescribes,
    createVolumeUserIds: new Set(),
    createVolumeGroups: new Set(),
    clientToken: request.ClientToken,
  };
  state.snapshots.set(snapshot.id, snapshot);
  return {
    status: 201,
    json: {
      SnapshotId: snapshot.id,
      OwnerId: snapshot.ownerId,
      Status: 'pending',
      StartTime: Date.now() / 1000,
      VolumeSize: snapshot.volumeSizeGiB,
      BlockSize: snapshot.blockSize,
      Description: snapshot.description,
    },
  };
}

function putSnapshotBlock(state: FakeAwsState, region: string, id: string, index: number, headers: IncomingHttpHeaders, body: Buffer): EbsResponse {
  const snapshot = snapshotOrThrow(state, region, id);
  if (snapshot.notFoundPutsLeft > 0) {
    snapshot.notFoundPutsLeft -= 1;
    throw new FakeServiceError('ResourceNotFoundException', `The snapshot '${id}' does not exist.`, 404);
  }
  if (snapshot.state !== 'uploading') throw new FakeServiceError('ValidationException', `Snapshot ${id} is not in pending state`, 400);
  if (!Number.isInteger(index) || index < 0 || index >= (snapshot.volumeSizeGiB * GiB) / snapshot.blockSize) {
    throw new FakeServiceError('ValidationException', `BlockIndex ${index} is out of range`, 400);
  }
  const dataLength = Number(header(headers, 'x-amz-Data-Length'));
  if (dataLength !== snapshot.blockSize || body.length !== dataLength) {
    throw new FakeServiceError('ValidationException', `DataLength ${dataLength} (body ${body.length}) must equal the block size ${snapshot.blockSize}`, 400);
  }
  if (header(headers, 'x-amz-Checksum-Algorithm') !== 'SHA256') throw new FakeServiceError('ValidationException', 'ChecksumAlgorithm must be SHA256', 400);
  const digest = createHash('sha256').update(body).digest();
  if (header(headers, 'x-amz-Checksum') !== digest.toString('base64')) {
    throw new FakeServiceError('ValidationException', `Checksum mismatch for block ${index}`, 400);
  }
  snapshot.blocks.set(index, digest);
  snapshot.bytesWritten += body.length;
  if (/^[0-9a-f]{64}$/.test(header(headers, 'x-amz-content-sha256') ?? '')) snapshot.signedPayloadPuts += 1;
  return { status: 201, headers: { 'x-amz-Checksum': digest.toString('base64'), 'x-amz-Checksum-Algorithm': 'SHA256' } };
}

function completeSnapshot(state: FakeAwsState, region: string, id: string, headers: IncomingHttpHeaders): EbsResponse {
  const snapshot = snapshotOrThrow(state, region, id);
  const changedBlocks = Number(header(headers, 'x-amz-ChangedBlocksCount'));
  if (changedBlocks !== snapshot.blocks.size) {
    throw new FakeServiceError('ValidationException', `ChangedBlocksCount ${changedBlocks} does not match the ${snapshot.blocks.size} blocks written`, 400);
  }
  const checksum = header(headers, 'x-amz-Checksum');
  if (checksum !== undefined) {
    if (header(headers, 'x-amz-Checksum-Aggregation-Method') !== 'LINEAR' || header(headers, 'x-amz-Checksum-Algorithm') !== 'SHA256') {
      throw new FakeServiceError('ValidationException', 'only LINEAR SHA256 aggregation is supported', 400);
    }
    const ordered = [...snapshot.blocks.entries()].sort(([a], [b]) => a - b).map(([, digest]) => digest);
    const expected = createHash('sha256').update(Buffer.concat(ordered)).digest('base64');
    if (checksum !== expected) {
      snapshot.state = 'error';
      throw new FakeServiceError('ValidationException', `Aggregated checksum mismatch for ${id}`, 400);
    }
  }
  snapshot.state = snapshot.describesUntilCompleted > 0 ? 'pending' : 'completed';
  return { status: 202, json: { Status: snapshot.state === 'completed' ? 'completed' : 'pending' } };
}

/** Routes one EBS direct request by method and path; returns the operation name for counting. */
export function routeEbs(method: string, path: string): { operation: string; snapshotId?: string; blockIndex?: number } | undefined {
  let match: RegExpExecArray | null;
  if (method === 'POST' && path === '/snapshots') return { operation: 'StartSnapshot' };
  if (method === 'PUT' && (match = /^\/snapshots\/([^/]+)\/blocks\/(\d+)$/.exec(path))) {
    return { operation: 'PutSnapshotBlock', snapshotId: match[1] as string, blockIndex: Number(match[2]) };
  }
  if (method === 'POST' && (match = /^\/snapshots\/completion\/([^/]+)$/.exec(path))) {
    return { operation: 'CompleteSnapshot', snapshotId: match[1] as string };
  }
  return undefined;
}

export function handleEbs(
  state: FakeAwsState,
  region: string,
  route: { operation: string; snapshotId?: string; blockIndex?: number },
  headers: IncomingHttpHeaders,
  body: Buffer,
): EbsResponse {
  switch (route.operation) {
    case 'StartSnapshot':
      return startSnapshot(state, region, body);
    case 'PutSnapshotBlock':
      return putSnapshotBlock(state, region, route.snapshotId ?? '', route.blockIndex ?? -1, headers, body);
    default:
      return completeSnapshot(state, region, route.snapshotId ?? '', headers);
  }
}
