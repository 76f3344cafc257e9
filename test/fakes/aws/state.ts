// The fake endpoint's world: per-region snapshots, images and parameters, plus fault switches and request counts.

export interface FakeSnapshot {
  id: string;
  region: string;
  ownerId: string;
  volumeSizeGiB: number;
  blockSize: number;
  description: string;
  /** `uploading` while EBS direct blocks arrive; `pending` after CompleteSnapshot until described enough. */
  state: 'uploading' | 'pending' | 'completed' | 'error';
  /** SHA-256 digest of every block written, by block index (data itself is not kept, so GiB uploads stay cheap). */
  blocks: Map<number, Buffer>;
  bytesWritten: number;
  /** PutSnapshotBlock requests whose SigV4 payload hash header was set by the client rather than left out. */
  signedPayloadPuts: number;
  /** PutSnapshotBlock calls that still fail with "does not exist" (eventual consistency after StartSnapshot). */
  notFoundPutsLeft: number;
  describesUntilCompleted: number;
  createVolumeUserIds: Set<string>;
  createVolumeGroups: Set<string>;
  clientToken: string | undefined;
}

export interface FakeBlockDevice {
  deviceName: string;
  snapshotId: string;
  volumeSizeGiB: number;
  volumeType: string;
  deleteOnTermination: boolean;
}

export interface FakeImage {
  id: string;
  region: string;
  ownerId: string;
  name: string;
  description: string;
  architecture: string;
  virtualizationType: string;
  rootDeviceName: string;
  enaSupport: boolean;
  sriovNetSupport: string | undefined;
  bootMode: string | undefined;
  uefiData: string | undefined;
  imdsSupport: string | undefined;
  tpmSupport: string | undefined;
  blockDevices: FakeBlockDevice[];
  tags: Record<string, string>;
  state: 'pending' | 'available' | 'failed';
  describesUntilAvailable: number;
  launchPermissions: { userId?: string; group?: string; organizationArn?: string; organizationalUnitArn?: string }[];
  sourceImageId: string | undefined;
  sourceRegion: string | undefined;
}

export interface FakeParameter {
  name: string;
  value: string;
  type: string;
  /** `text` unless PutParameter named another data type. */
  dataType: string;
  version: number;
  lastModified: Date;
}

/** Next-N-calls faults for one operation, or every operation when none is named (optionally in one region). */
export interface FaultRule {
  operation?: string;
  kind: 'throttle' | 'server-error';
  times: number;
  region?: string;
  /** Matching calls to let through before the fault starts. */
  after?: number;
}

export interface FakeOptions {
  accountId: string;
  blockSize: number;
  /** Each new snapshot rejects this many PutSnapshotBlock calls as "does not exist" (coldsnap#43). */
  snapshotNotFoundPuts: number;
  /** DescribeSnapshots calls that still show a completed upload as `pending`. */
  snapshotPendingDescribes: number;
  /** DescribeImages calls that still show a new or copied image as `pending`. */
  imagePendingDescribes: number;
  /** Regions in which CopyImage fails. */
  failCopyImageTo: Set<string>;
  /** RegisterImage fails (to prove the snapshots are cleaned up). */
  failRegisterImage: boolean;
  /** Added before every response: a real endpoint is a round trip away. */
  latencyMs: number;
  /** The caller may write parameter names under the reserved `aws`/`ssm` prefixes, as AWS's own publishing accounts do. */
  reservedParameterNames: boolean;
  /**
   * Opt-in regions the account has not enabled: AWS answers every request signed for them as it answers an
   * unknown access key (EC2 AuthFailure, SSM UnrecognizedClientException, STS InvalidClientTokenId).
   */
  disabledRegions: Set<string>;
}

export class FakeAwsState {
  readonly options: FakeOptions;
  readonly snapshots = new Map<string, FakeSnapshot>();
  readonly images = new Map<string, FakeImage>();
  /** Parameters by `region\0name`. */
  readonly parameters = new Map<string, FakeParameter>();
  readonly faults: FaultRule[] = [];
  /** Requests by `Operation` and by `region:Operation`. */
  readonly requestCounts = new Map<string, number>();
  /** Every request that reached an operation, in the order it arrived. */
  readonly requestLog: { operation: string; region: string }[] = [];
  private nextId = 1;

  constructor(options: Partial<FakeOptions> = {}) {
    this.options = {
      accountId: '111122223333',
      blockSize: 512 * 1024,
      snapshotNotFoundPuts: 0,
      snapshotPendingDescribes: 1,
      imagePendingDescribes: 1,
      failCopyImageTo: new Set(),
      failRegisterImage: false,
      latencyMs: 0,
      reservedParameterNames: false,
      disabledRegions: new Set(),
      ...options,
    };
  }

  newId(prefix: string): string {
    return `${prefix}-${(this.nextId++).toString(16).padStart(17, '0')}`;
  }

  count(operation: string, region?: string): number {
    return this.requestCounts.get(region === undefined ? operation : `${region}:${operation}`) ?? 0;
  }

  recordRequest(operation: string, region: string): void {
    this.requestLog.push({ operation, region });
    for (const key of [operation, `${region}:${operation}`]) this.requestCounts.set(key, (this.requestCounts.get(key) ?? 0) + 1);
  }

  /** Consumes one matching fault, if any. */
  takeFault(operation: string, region: string): FaultRule['kind'] | undefined {
    const rule = this.faults.find((f) => f.times > 0 && (f.operation === undefined || f.operation === operation) && (f.region === undefined || f.region === region));
    if (!rule) return undefined;
    if (rule.after !== undefined && rule.after > 0) {
      rule.after -= 1;
      return undefined;
    }
    rule.times -= 1;
    return rule.kind;
  }

  imagesIn(region: string): FakeImage[] {
    return [...this.images.values()].filter((image) => image.region === region);
  }

  snapshotsIn(region: string): FakeSnapshot[] {
    return [...this.snapshots.values()].filter((snapshot) => snapshot.region === region);
  }
}
