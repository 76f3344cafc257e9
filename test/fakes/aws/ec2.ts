// EC2 Query protocol: the image, snapshot and permission calls brl makes.
import type { FakeAwsState, FakeBlockDevice, FakeImage, FakeSnapshot } from './state.ts';
import { FakeServiceError } from './errors.ts';
import { type XmlValue } from './xml.ts';

export const ec2Namespace = 'http://ec2.amazonaws.com/doc/2016-11-15/';

/** `Prefix.1`, `Prefix.2`, … as a list. */
function listParam(params: URLSearchParams, prefix: string): string[] {
  const values: string[] = [];
  for (let n = 1; params.has(`${prefix}.${n}`); n++) values.push(params.get(`${prefix}.${n}`) ?? '');
  return values;
}

/** Indexed structures `Prefix.N.Field…` as one record per N (keys relative to `Prefix.N.`). */
function structList(params: URLSearchParams, prefix: string): Record<string, string>[] {
  const byIndex = new Map<number, Record<string, string>>();
  for (const [key, value] of params) {
    const match = key.startsWith(`${prefix}.`) ? /^(\d+)\.(.+)$/.exec(key.slice(prefix.length + 1)) : null;
    if (!match) continue;
    const index = Number(match[1]);
    const record = byIndex.get(index) ?? {};
    record[match[2] as string] = value;
    byIndex.set(index, record);
  }
  return [...byIndex.entries()].sort(([a], [b]) => a - b).map(([, record]) => record);
}

const n = String.raw`[1-9]\d*`;
const tagSpecification = String.raw`TagSpecification\.${n}\.(ResourceType|Tag\.${n}\.(Key|Value))`;
const filter = String.raw`Filter\.${n}\.(Name|Value\.${n})`;

/** The parameters each action accepts besides Action, Version and DryRun, as key patterns (EC2 refuses others). */
const actionParameters: Record<string, RegExp> = Object.fromEntries(
  Object.entries({
    DescribeImages: [`ImageId\\.${n}`, `Owner\\.${n}`, `ExecutableBy\\.${n}`, filter, 'IncludeDeprecated', 'IncludeDisabled', 'MaxResults', 'NextToken'],
    RegisterImage: [
      'Name', 'Description', 'Architecture', 'VirtualizationType', 'RootDeviceName', 'EnaSupport', 'SriovNetSupport', 'BootMode', 'UefiData',
      'ImdsSupport', 'TpmSupport', 'ClientToken', 'ImageLocation', 'KernelId', 'RamdiskId', `BillingProduct\\.${n}`, tagSpecification,
      `BlockDeviceMapping\\.${n}\\.(DeviceName|NoDevice|VirtualName|Ebs\\.(SnapshotId|VolumeSize|VolumeType|DeleteOnTermination|Encrypted|Iops|Throughput|KmsKeyId))`,
    ],
    DeregisterImage: ['ImageId', 'DeleteAssociatedSnapshots'],
    CopyImage: ['SourceImageId', 'SourceRegion', 'Name', 'Description', 'ClientToken', 'Encrypted', 'KmsKeyId', 'CopyImageTags', 'DestinationOutpostArn', tagSpecification],
    ModifyImageAttribute: [
      'ImageId', 'Attribute', 'OperationType', 'Value', 'Description\\.Value', 'ImdsSupport\\.Value', `UserId\\.${n}`, `UserGroup\\.${n}`, `ProductCode\\.${n}`,
      `OrganizationArn\\.${n}`, `OrganizationalUnitArn\\.${n}`, `LaunchPermission\\.(Add|Remove)\\.${n}\\.(UserId|Group|OrganizationArn|OrganizationalUnitArn)`,
    ],
    DescribeImageAttribute: ['ImageId', 'Attribute'],
    ModifySnapshotAttribute: ['SnapshotId', 'Attribute', 'OperationType', `UserId\\.${n}`, `UserGroup\\.${n}`, `CreateVolumePermission\\.(Add|Remove)\\.${n}\\.(UserId|Group)`],
    DescribeSnapshotAttribute: ['SnapshotId', 'Attribute'],
    DescribeSnapshots: [`SnapshotId\\.${n}`, `Owner\\.${n}`, `RestorableBy\\.${n}`, filter, 'MaxResults', 'NextToken'],
    DeleteSnapshot: ['SnapshotId'],
  }).map(([action, patterns]) => [action, new RegExp(`^(Action|Version|DryRun|${patterns.join('|')})$`)]),
);

/** As EC2 does: a parameter the action does not define is refused before anything runs. */
export function rejectUnknownParameters(action: string, params: URLSearchParams): void {
  const allowed = actionParameters[action];
  if (!allowed) return;
  for (const key of params.keys()) {
    if (!allowed.test(key)) throw new FakeServiceError('UnknownParameter', `The parameter ${key} is not recognized`);
  }
}

/** An enumerated or boolean parameter with a value outside its set is InvalidParameterValue, as EC2 answers. */
function checkValue(params: URLSearchParams, key: string, valid: readonly string[]): void {
  const value = params.get(key);
  if (value !== null && !valid.includes(value)) {
    throw new FakeServiceError('InvalidParameterValue', `Value (${value}) for parameter ${key} is invalid. Valid values: ${valid.join(', ')}`);
  }
}

const booleans = ['true', 'false'];
const validArchitectures = ['i386', 'x86_64', 'arm64', 'x86_64_mac', 'arm64_mac'] as const;
const validVolumeTypes = ['standard', 'io1', 'io2', 'gp2', 'sc1', 'st1', 'gp3'] as const;
const validBootModes = ['legacy-bios', 'uefi', 'uefi-preferred'] as const;
/** EC2's limit on RegisterImage's UefiData (base64 text). */
const maxUefiDataLength = 64 * 1024;

function checkRegisterImageValues(params: URLSearchParams): void {
  checkValue(params, 'Architecture', validArchitectures);
  checkValue(params, 'VirtualizationType', ['hvm', 'paravirtual']);
  checkValue(params, 'EnaSupport', booleans);
  checkValue(params, 'SriovNetSupport', ['simple']);
  checkValue(params, 'BootMode', validBootModes);
  checkValue(params, 'ImdsSupport', ['v2.0']);
  checkValue(params, 'TpmSupport', ['v2.0']);
  const uefiData = params.get('UefiData');
  if (uefiData !== null && uefiData.length > maxUefiDataLength) {
    throw new FakeServiceError('InvalidParameterValue', `Value for parameter UefiData is invalid. The maximum length is ${maxUefiDataLength} characters.`);
  }
  for (const key of params.keys()) {
    if (/\.Ebs\.VolumeType$/.test(key)) checkValue(params, key, validVolumeTypes);
    if (/\.Ebs\.(DeleteOnTermination|Encrypted)$/.test(key)) checkValue(params, key, booleans);
    if (/\.Ebs\.VolumeSize$/.test(key) && !/^[1-9]\d*$/.test(params.get(key) ?? '')) {
      throw new FakeServiceError('InvalidParameterValue', `Value (${params.get(key)}) for parameter ${key} is invalid. Expected a positive integer.`);
    }
  }
}

function required(params: URLSearchParams, name: string): string {
  const value = params.get(name);
  if (!value) throw new FakeServiceError('MissingParameter', `The request must contain the parameter ${name}`);
  return value;
}

function imageOrThrow(state: FakeAwsState, region: string, id: string): FakeImage {
  const image = state.images.get(id);
  if (!image || image.region !== region) throw new FakeServiceError('InvalidAMIID.NotFound', `The image id '[${id}]' does not exist`);
  return image;
}

function snapshotOrThrow(state: FakeAwsState, region: string, id: string): FakeSnapshot {
  const snapshot = state.snapshots.get(id);
  if (!snapshot || snapshot.region !== region) throw new FakeServiceError('InvalidSnapshot.NotFound', `The snapshot '${id}' does not exist.`);
  return snapshot;
}

function imageXml(image: FakeImage): XmlValue {
  return {
    imageId: image.id,
    imageLocation: `${image.ownerId}/${image.name}`,
    imageState: image.state,
    imageOwnerId: image.ownerId,
    isPublic: image.launchPermissions.some((p) => p.group === 'all'),
    architecture: image.architecture,
    imageType: 'machine',
    name: image.name,
    description: image.description,
    rootDeviceType: 'ebs',
    rootDeviceName: image.rootDeviceName,
    blockDeviceMapping: image.blockDevices.map((device) => ({
      deviceName: device.deviceName,
      ebs: {
        snapshotId: device.snapshotId,
        volumeSize: device.volumeSizeGiB,
        deleteOnTermination: device.deleteOnTermination,
        volumeType: device.volumeType,
        encrypted: false,
      },
    })),
    virtualizationType: image.virtualizationType,
    hypervisor: 'xen',
    enaSupport: image.enaSupport,
    sriovNetSupport: image.sriovNetSupport,
    bootMode: image.bootMode,
    imdsSupport: image.imdsSupport,
    tpmSupport: image.tpmSupport,
    tagSet: Object.entries(image.tags).map(([key, value]) => ({ key, value })),
  };
}

function snapshotXml(snapshot: FakeSnapshot): XmlValue {
  return {
    snapshotId: snapshot.id,
    volumeId: 'vol-ffffffff',
    status: snapshot.state === 'uploading' ? 'pending' : snapshot.state,
    startTime: new Date().toISOString(),
    progress: snapshot.state === 'completed' ? '100%' : '0%',
    ownerId: snapshot.ownerId,
    volumeSize: snapshot.volumeSizeGiB,
    description: snapshot.description,
    encrypted: false,
  };
}

/** The DescribeImages filters the fake models; EC2 refuses names it does not know, the fake refuses these others too. */
const imageFilters: Record<string, (image: FakeImage) => string> = {
  name: (image) => image.name,
  architecture: (image) => image.architecture,
  'image-type': () => 'machine',
  'virtualization-type': (image) => image.virtualizationType,
  state: (image) => image.state,
};

function matchesFilters(image: FakeImage, filters: { name: string; values: string[] }[]): boolean {
  return filters.every((filter) => filter.values.includes((imageFilters[filter.name] as (image: FakeImage) => string)(image)));
}

function describeImages(state: FakeAwsState, region: string, params: URLSearchParams): XmlValue {
  const ids = listParam(params, 'ImageId');
  const owners = listParam(params, 'Owner');
  const filters = structList(params, 'Filter').map((f) => ({
    name: f.Name ?? '',
    values: Object.entries(f).filter(([k]) => k.startsWith('Value.')).map(([, v]) => v),
  }));
  for (const { name } of filters) {
    if (!Object.hasOwn(imageFilters, name)) throw new FakeServiceError('InvalidParameterValue', `The filter '${name}' is invalid`);
  }
  for (const id of ids) imageOrThrow(state, region, id);
  const images = state
    .imagesIn(region)
    .filter((image) => ids.length === 0 || ids.includes(image.id))
    .filter((image) => owners.length === 0 || owners.some((owner) => owner === 'self' ? image.ownerId === state.options.accountId : owner === image.ownerId))
    .filter((image) => matchesFilters(image, filters));
  for (const image of images) {
    if (image.state === 'pending' && --image.describesUntilAvailable <= 0) image.state = 'available';
  }
  return { imagesSet: images.map(imageXml) };
}

function registerImage(state: FakeAwsState, region: string, params: URLSearchParams): XmlValue {
  const name = required(params, 'Name');
  checkRegisterImageValues(params);
  if (state.options.failRegisterImage) throw new FakeServiceError('InvalidParameterValue', 'injected RegisterImage failure');
  if (state.imagesIn(region).some((image) => image.name === name && image.ownerId === state.options.accountId)) {
    throw new FakeServiceError('InvalidAMIName.Duplicate', `AMI name ${name} is already in use by AMI`);
  }
  const blockDevices: FakeBlockDevice[] = structList(params, 'BlockDeviceMapping').map((m) => {
    const snapshotId = m['Ebs.SnapshotId'] ?? '';
    const snapshot = snapshotOrThrow(state, region, snapshotId);
    if (snapshot.state !== 'completed') throw new FakeServiceError('IncorrectState', `Snapshot ${snapshotId} is not completed`);
    const volumeSizeGiB = Number(m['Ebs.VolumeSize'] ?? snapshot.volumeSizeGiB);
    if (volumeSizeGiB < snapshot.volumeSizeGiB) {
      throw new FakeServiceError('InvalidBlockDeviceMapping', `Volume of ${volumeSizeGiB} GiB is smaller than snapshot ${snapshotId}, expect size >= ${snapshot.volumeSizeGiB}GiB`);
    }
    return {
      deviceName: m.DeviceName ?? '',
      snapshotId,
      volumeSizeGiB,
      volumeType: m['Ebs.VolumeType'] ?? 'standard',
      deleteOnTermination: m['Ebs.DeleteOnTermination'] === 'true',
    };
  });
  const rootDeviceName = params.get('RootDeviceName') ?? '';
  if (!blockDevices.some((device) => device.deviceName === rootDeviceName)) {
    throw new FakeServiceError('InvalidBlockDeviceMapping', `The root device name ${rootDeviceName} has no mapping`);
  }
  const tags: Record<string, string> = {};
  for (const spec of structList(params, 'TagSpecification')) {
    for (const [key, value] of Object.entries(spec)) {
      const match = /^Tag\.(\d+)\.Key$/.exec(key);
      if (match) tags[value] = spec[`Tag.${match[1]}.Value`] ?? '';
    }
  }
  const image: FakeImage = {
    id: state.newId('ami'),
    region,
    ownerId: state.options.accountId,
    name,
    description: params.get('Description') ?? '',
    architecture: params.get('Architecture') ?? 'x86_64',
    virtualizationType: params.get('VirtualizationType') ?? 'paravirtual',
    rootDeviceName,
    enaSupport: params.get('EnaSupport') === 'true',
    sriovNetSupport: params.get('SriovNetSupport') ?? undefined,
    bootMode: params.get('BootMode') ?? undefined,
    uefiData: params.get('UefiData') ?? undefined,
    imdsSupport: params.get('ImdsSupport') ?? undefined,
    tpmSupport: params.get('TpmSupport') ?? undefined,
    blockDevices,
    tags,
    state: 'pending',
    describesUntilAvailable: state.options.imagePendingDescribes,
    launchPermissions: [],
    sourceImageId: undefined,
    sourceRegion: undefined,
  };
  state.images.set(image.id, image);
  return { imageId: image.id };
}

function copyImage(state: FakeAwsState, region: string, params: URLSearchParams): XmlValue {
  const sourceRegion = required(params, 'SourceRegion');
  const source = imageOrThrow(state, sourceRegion, required(params, 'SourceImageId'));
  if (state.options.failCopyImageTo.has(region)) {
    throw new FakeServiceError('InvalidRequest', `injected CopyImage failure in ${region}`);
  }
  if (source.state !== 'available') throw new FakeServiceError('IncorrectState', `Image ${source.id} is not available`);
  const blockDevices = source.blockDevices.map((device) => {
    const original = snapshotOrThrow(state, sourceRegion, device.snapshotId);
    const copy: FakeSnapshot = {
      ...original,
      id: state.newId('snap'),
      region,
      blocks: new Map(original.blocks),
      createVolumeUserIds: new Set(),
      createVolumeGroups: new Set(),
      describesUntilCompleted: 0,
    };
    state.snapshots.set(copy.id, copy);
    return { ...device, snapshotId: copy.id };
  });
  const copy: FakeImage = {
    ...source,
    id: state.newId('ami'),
    region,
    name: params.get('Name') ?? source.name,
    description: params.get('Description') ?? source.description,
    blockDevices,
    state: 'pending',
    describesUntilAvailable: state.options.imagePendingDescribes,
    launchPermissions: [],
    tags: {},
    sourceImageId: source.id,
    sourceRegion,
  };
  state.images.set(copy.id, copy);
  return { imageId: copy.id };
}

function permissionChanges(params: URLSearchParams, prefix: string): { add: Record<string, string>[]; remove: Record<string, string>[] } {
  return { add: structList(params, `${prefix}.Add`), remove: structList(params, `${prefix}.Remove`) };
}

function modifyImageAttribute(state: FakeAwsState, region: string, params: URLSearchParams): XmlValue {
  const image = imageOrThrow(state, region, required(params, 'ImageId'));
  const { add, remove } = permissionChanges(params, 'LaunchPermission');
  const toPermission = (p: Record<string, string>) => ({
    ...(p.UserId ? { userId: p.UserId } : {}),
    ...(p.Group ? { group: p.Group } : {}),
    ...(p.OrganizationArn ? { organizationArn: p.OrganizationArn } : {}),
    ...(p.OrganizationalUnitArn ? { organizationalUnitArn: p.OrganizationalUnitArn } : {}),
  });
  const same = (a: object, b: object) => JSON.stringify(a) === JSON.stringify(b);
  for (const p of add.map(toPermission)) {
    if (p.group !== undefined && p.group !== 'all') throw new FakeServiceError('InvalidParameterValue', `Invalid group ${p.group}`);
    if (!image.launchPermissions.some((existing) => same(existing, p))) image.launchPermissions.push(p);
  }
  for (const p of remove.map(toPermission)) image.launchPermissions = image.launchPermissions.filter((existing) => !same(existing, p));
  return { return: true };
}

function modifySnapshotAttribute(state: FakeAwsState, region: string, params: URLSearchParams): XmlValue {
  const snapshot = snapshotOrThrow(state, region, required(params, 'SnapshotId'));
  if (params.get('Attribute') !== 'createVolumePermission') throw new FakeServiceError('InvalidParameterValue', 'unsupported Attribute');
  const { add, remove } = permissionChanges(params, 'CreateVolumePermission');
  for (const p of add) {
    if (p.UserId) snapshot.createVolumeUserIds.add(p.UserId);
    if (p.Group) snapshot.createVolumeGroups.add(p.Group);
  }
  for (const p of remove) {
    if (p.UserId) snapshot.createVolumeUserIds.delete(p.UserId);
    if (p.Group) snapshot.createVolumeGroups.delete(p.Group);
  }
  return { return: true };
}

/** The attributes brl reads back: like EC2, an unset boot mode or UEFI data is an absent element. */
const imageAttributes: Record<string, (image: FakeImage) => XmlValue> = {
  launchPermission: (image) => image.launchPermissions.map((p) => ({ ...p })),
  bootMode: (image) => (image.bootMode === undefined ? undefined : { value: image.bootMode }),
  uefiData: (image) => (image.uefiData === undefined ? undefined : { value: image.uefiData }),
};

function describeImageAttribute(state: FakeAwsState, region: string, params: URLSearchParams): XmlValue {
  const image = imageOrThrow(state, region, required(params, 'ImageId'));
  const attribute = params.get('Attribute') ?? '';
  const read = imageAttributes[attribute];
  if (read === undefined) throw new FakeServiceError('InvalidParameterValue', `Value (${attribute}) for parameter attribute is invalid. Unknown attribute.`);
  return { imageId: image.id, [attribute]: read(image) };
}

function describeSnapshotAttribute(state: FakeAwsState, region: string, params: URLSearchParams): XmlValue {
  const snapshot = snapshotOrThrow(state, region, required(params, 'SnapshotId'));
  if (params.get('Attribute') !== 'createVolumePermission') throw new FakeServiceError('InvalidParameterValue', 'unsupported Attribute');
  const permissions = [...[...snapshot.createVolumeGroups].map((group) => ({ group })), ...[...snapshot.createVolumeUserIds].map((userId) => ({ userId }))];
  return { snapshotId: snapshot.id, createVolumePermission: permissions };
}

function describeSnapshots(state: FakeAwsState, region: string, params: URLSearchParams): XmlValue {
  const ids = listParam(params, 'SnapshotId');
  const snapshots = ids.map((id) => snapshotOrThrow(state, region, id));
  for (const snapshot of snapshots) {
    if (snapshot.state === 'pending' && --snapshot.describesUntilCompleted <= 0) snapshot.state = 'completed';
  }
  return { snapshotSet: snapshots.map(snapshotXml) };
}

function deleteSnapshot(state: FakeAwsState, region: string, params: URLSearchParams): XmlValue {
  const snapshot = snapshotOrThrow(state, region, required(params, 'SnapshotId'));
  const user = state.imagesIn(region).find((image) => image.blockDevices.some((d) => d.snapshotId === snapshot.id));
  if (user) throw new FakeServiceError('InvalidSnapshot.InUse', `The snapshot ${snapshot.id} is currently in use by ${user.id}`);
  state.snapshots.delete(snapshot.id);
  return { return: true };
}

function deregisterImage(state: FakeAwsState, region: string, params: URLSearchParams): XmlValue {
  const image = imageOrThrow(state, region, required(params, 'ImageId'));
  state.images.delete(image.id);
  return { return: true };
}

export const ec2Actions: Record<string, (state: FakeAwsState, region: string, params: URLSearchParams) => XmlValue> = {
  DescribeImages: describeImages,
  RegisterImage: registerImage,
  DeregisterImage: deregisterImage,
  CopyImage: copyImage,
  ModifyImageAttribute: modifyImageAttribute,
  DescribeImageAttribute: describeImageAttribute,
  ModifySnapshotAttribute: modifySnapshotAttribute,
  DescribeSnapshotAttribute: describeSnapshotAttribute,
  DescribeSnapshots: describeSnapshots,
  DeleteSnapshot: deleteSnapshot,
};
