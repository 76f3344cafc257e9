import test from 'ava';
import { DATA_PARTITION_GUID, planDataDisk, planOsDisk, partitionEndSector, type LayoutOptions } from '../../../src/lib/image/layout.ts';
import { derivedUuid, fatVolumeId, idHash, uuidFromHash, veritySalt } from '../../../src/lib/image/ids.ts';
import { BrlError } from '../../../src/lib/core/errors.ts';

// The worked tables of image-layout.md §1: offset / size in MiB.
const tables: Record<string, [LayoutOptions, Record<string, [number, number]>]> = {
  '2 GiB A/B': [{ osImageSizeGiB: 2, dataImageSizeGiB: 1, partitionPlan: 'split', inPlaceUpdates: true }, {
    BIOS: [1, 4], 'EFI-A': [5, 5], 'BOOT-A': [10, 40], 'ROOT-A': [50, 920], 'HASH-A': [970, 10], 'RESERVED-A': [980, 25],
    'EFI-B': [1005, 5], 'BOOT-B': [1010, 40], 'ROOT-B': [1050, 920], 'HASH-B': [1970, 10], 'RESERVED-B': [1980, 25],
    PRIVATE: [2005, 41], 'DATA-A': [2046, 1],
  }],
  '4 GiB A/B': [{ osImageSizeGiB: 4, dataImageSizeGiB: 1, partitionPlan: 'split', inPlaceUpdates: true }, {
    BIOS: [1, 4], 'EFI-A': [5, 5], 'BOOT-A': [10, 80], 'ROOT-A': [90, 1840], 'HASH-A': [1930, 20], 'RESERVED-A': [1950, 55],
    'EFI-B': [2005, 5], 'BOOT-B': [2010, 80], 'ROOT-B': [2090, 1840], 'HASH-B': [3930, 20], 'RESERVED-B': [3950, 55],
    PRIVATE: [4005, 89], 'DATA-A': [4094, 1],
  }],
  '2 GiB single': [{ osImageSizeGiB: 2, dataImageSizeGiB: 1, partitionPlan: 'split', inPlaceUpdates: false }, {
    BIOS: [1, 4], 'EFI-A': [5, 10], 'BOOT-A': [15, 80], 'ROOT-A': [95, 1840], 'HASH-A': [1935, 20], 'RESERVED-A': [1955, 50],
    PRIVATE: [2005, 41], 'DATA-A': [2046, 1],
  }],
  '4 GiB single': [{ osImageSizeGiB: 4, dataImageSizeGiB: 1, partitionPlan: 'split', inPlaceUpdates: false }, {
    BIOS: [1, 4], 'EFI-A': [5, 10], 'BOOT-A': [15, 160], 'ROOT-A': [175, 3680], 'HASH-A': [3855, 40], 'RESERVED-A': [3895, 110],
    PRIVATE: [4005, 89], 'DATA-A': [4094, 1],
  }],
};

for (const [title, [options, expected]] of Object.entries(tables)) {
  test(`split plan matches the spec's ${title} table, leaving the last MiB for the backup GPT`, (t) => {
    const plan = planOsDisk(options);
    const actual = Object.fromEntries(plan.partitions.map((p) => [p.key, [p.startMiB, p.sizeMiB]]));
    t.deepEqual(actual, expected);
    t.is(plan.sizeMiB, 1024 * options.osImageSizeGiB);
    const last = plan.partitions.at(-1)!;
    t.is(last.startMiB + last.sizeMiB, plan.sizeMiB - 1);
  });
}

test('partition numbers follow offsets: A/B 1..13, single bank 1..8, BOOT/ROOT/HASH adjacent', (t) => {
  const ab = planOsDisk({ osImageSizeGiB: 2, dataImageSizeGiB: 1, partitionPlan: 'split', inPlaceUpdates: true });
  t.deepEqual(ab.partitions.map((p) => `${p.number}:${p.key}`), [
    '1:BIOS', '2:EFI-A', '3:BOOT-A', '4:ROOT-A', '5:HASH-A', '6:RESERVED-A', '7:EFI-B', '8:BOOT-B', '9:ROOT-B',
    '10:HASH-B', '11:RESERVED-B', '12:PRIVATE', '13:DATA-A',
  ]);
  const single = planOsDisk({ osImageSizeGiB: 2, dataImageSizeGiB: 1, partitionPlan: 'split', inPlaceUpdates: false });
  t.deepEqual(single.partitions.map((p) => `${p.number}:${p.key}`), [
    '1:BIOS', '2:EFI-A', '3:BOOT-A', '4:ROOT-A', '5:HASH-A', '6:RESERVED-A', '7:PRIVATE', '8:DATA-A',
  ]);
  t.deepEqual(ab.partitions.filter((p) => /^(BOOT|ROOT|HASH)-A$/.test(p.key)).map((p) => p.number), [3, 4, 5]);
});

test('one bank is exactly 500·N MiB', (t) => {
  for (const n of [2, 4, 8]) {
    const plan = planOsDisk({ osImageSizeGiB: n, dataImageSizeGiB: 1, partitionPlan: 'split', inPlaceUpdates: true });
    const bankA = plan.partitions.filter((p) => p.key.endsWith('-A') && p.key !== 'DATA-A');
    t.is(bankA.reduce((sum, p) => sum + p.sizeMiB, 0), 500 * n);
  }
});

test('unified plan puts a D GiB DATA-A with the preferred GUID right after PRIVATE', (t) => {
  const plan = planOsDisk({ osImageSizeGiB: 4, dataImageSizeGiB: 3, partitionPlan: 'unified', inPlaceUpdates: true });
  const data = plan.partitions.at(-1)!;
  t.is(data.key, 'DATA-A');
  t.is(data.startMiB, 1024 * 4 - 2);
  t.is(data.sizeMiB, 3 * 1024);
  t.deepEqual(data.guid, { fixed: DATA_PARTITION_GUID.preferred });
  t.is(plan.sizeMiB, 7 * 1024);
  t.is(planDataDisk({ osImageSizeGiB: 4, dataImageSizeGiB: 3, partitionPlan: 'unified', inPlaceUpdates: true }), undefined);
});

test('split plan has a fallback DATA-A stub and a data disk whose DATA-B covers D·1024 − 2 MiB', (t) => {
  const options: LayoutOptions = { osImageSizeGiB: 2, dataImageSizeGiB: 20, partitionPlan: 'split', inPlaceUpdates: true };
  t.deepEqual(planOsDisk(options).partitions.at(-1)!.guid, { fixed: DATA_PARTITION_GUID.fallback });
  const dataDisk = planDataDisk(options)!;
  t.is(dataDisk.sizeMiB, 20 * 1024);
  t.deepEqual(dataDisk.partitions.map((p) => [p.key, p.startMiB, p.sizeMiB, p.name]), [['DATA-B', 1, 20 * 1024 - 2, '']]);
});

test('a partition ends at (start + size) · 2048 − 1', (t) => {
  t.is(partitionEndSector({ startMiB: 10, sizeMiB: 40 }), 50n * 2048n - 1n);
});

test('layout sizes must be whole GiB', (t) => {
  const error = t.throws(() => planOsDisk({ osImageSizeGiB: 2.5, dataImageSizeGiB: 1, partitionPlan: 'split', inPlaceUpdates: true }), { instanceOf: BrlError });
  t.regex(error!.message, /os-image-size-gib/);
});

test('derived UUIDs follow the spec: version nibble 4 and upstream variant mapping', (t) => {
  const ids = { sourceDateEpoch: 1700000000, variant: 'aws-dev', arch: 'x86_64' };
  const h = idHash(ids, 'gpt-disk-os').toString('hex');
  const uuid = derivedUuid(ids, 'gpt-disk-os');
  t.is(uuid.slice(0, 8), h.slice(0, 8));
  t.is(uuid[14], '4');
  t.is(uuid.slice(15, 18), h.slice(13, 16));
  t.regex(uuid, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  // Each nibble of the variant position maps as upstream does.
  const mapped = [...'0123456789abcdef'].map((nibble) => uuidFromHash(Buffer.from(`${'0'.repeat(16)}${nibble}${'0'.repeat(47)}`, 'hex'))[19]);
  t.deepEqual(mapped.join(''), '88888888' + '89ab' + '89ab');
  t.is(fatVolumeId(ids), idHash(ids, 'efi-vfat').toString('hex').slice(0, 8));
  t.is(veritySalt(ids).length, 32);
  t.not(derivedUuid(ids, 'gpt-part-boot-a'), derivedUuid({ ...ids, sourceDateEpoch: 1700000001 }, 'gpt-part-boot-a'));
});

test('a non-numeric SOURCE_DATE_EPOCH is refused', (t) => {
  t.throws(() => idHash({ sourceDateEpoch: 'yesterday', variant: 'dev', arch: 'x86_64' }, 'x'), { instanceOf: BrlError, message: /SOURCE_DATE_EPOCH/ });
});
