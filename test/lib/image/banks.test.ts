import test from 'ava';
import { findRole, findSets, partitionRoles } from '../../../src/lib/image/banks.ts';
import { type GptTable } from '../../../src/lib/image/gpt.ts';
import { gptForPlan, planDataDisk, planOsDisk } from '../../../src/lib/image/layout.ts';
import { BrlError } from '../../../src/lib/core/errors.ts';
import { fixtureIds } from './disk-fixture.ts';

const layout = { osImageSizeGiB: 2, dataImageSizeGiB: 1, inPlaceUpdates: true } as const;

function without(table: GptTable, ...names: string[]): GptTable {
  return { ...table, partitions: table.partitions.filter((partition) => !names.includes(partition.name)) };
}

test('the first partition of each type is bank A and the second bank B, in partition number order', (t) => {
  const table = gptForPlan(planOsDisk({ ...layout, partitionPlan: 'split' }), fixtureIds);
  const roles = partitionRoles([...table.partitions].reverse());
  const named = table.partitions.map((partition) => `${partition.name}=${roles.get(partition.number)}`);
  t.deepEqual(named, [
    'BIOS-BOOT=BIOS', 'EFI-SYSTEM=EFI-A', 'BOTTLEROCKET-BOOT-A=BOOT-A', 'BOTTLEROCKET-ROOT-A=ROOT-A', 'BOTTLEROCKET-HASH-A=HASH-A',
    'BOTTLEROCKET-RESERVED-A=RESERVED-A', 'EFI-BACKUP=EFI-B', 'BOTTLEROCKET-BOOT-B=BOOT-B', 'BOTTLEROCKET-ROOT-B=ROOT-B',
    'BOTTLEROCKET-HASH-B=HASH-B', 'BOTTLEROCKET-RESERVED-B=RESERVED-B', 'BOTTLEROCKET-PRIVATE=PRIVATE', '=DATA-A',
  ]);
  t.is(findRole(table, 'HASH-B')!.name, 'BOTTLEROCKET-HASH-B');
  t.is(findRole(table, 'HASH-C'), undefined);
});

test('a split data disk\'s partition is DATA-B; a unified disk\'s data partition is DATA-A', (t) => {
  const data = gptForPlan(planDataDisk({ ...layout, partitionPlan: 'split' })!, fixtureIds);
  t.deepEqual([...partitionRoles(data.partitions).values()], ['DATA-B']);
  const unified = gptForPlan(planOsDisk({ ...layout, partitionPlan: 'unified' }), fixtureIds);
  t.is([...partitionRoles(unified.partitions).values()].at(-1), 'DATA-A');
});

test('findSets pairs each bank\'s BOOT, ROOT and HASH and finds PRIVATE', (t) => {
  const table = gptForPlan(planOsDisk({ ...layout, partitionPlan: 'split' }), fixtureIds);
  const sets = findSets(table, 'disk.img');
  t.deepEqual([sets.a.boot.name, sets.a.root.name, sets.a.hash.name], ['BOTTLEROCKET-BOOT-A', 'BOTTLEROCKET-ROOT-A', 'BOTTLEROCKET-HASH-A']);
  t.deepEqual([sets.b!.boot.name, sets.b!.root.name, sets.b!.hash.name], ['BOTTLEROCKET-BOOT-B', 'BOTTLEROCKET-ROOT-B', 'BOTTLEROCKET-HASH-B']);
  t.is(sets.a.label, 'A');
  t.is(sets.b!.label, 'B');
  t.is(sets.private!.name, 'BOTTLEROCKET-PRIVATE');
  const single = findSets(without(table, 'BOTTLEROCKET-BOOT-B', 'BOTTLEROCKET-ROOT-B', 'BOTTLEROCKET-HASH-B'), 'disk.img');
  t.is(single.b, undefined);
});

test('findSets refuses a data disk and a half bank, naming the disk', (t) => {
  const data = gptForPlan(planDataDisk({ ...layout, partitionPlan: 'split' })!, fixtureIds);
  t.throws(() => findSets(data, 'data.img'), { instanceOf: BrlError, code: 'NOT_A_BOTTLEROCKET_DISK', message: /^data\.img is not a Bottlerocket disk/ });
  const os = gptForPlan(planOsDisk({ ...layout, partitionPlan: 'split' }), fixtureIds);
  t.throws(() => findSets(without(os, 'BOTTLEROCKET-HASH-B'), 'os.img'), { instanceOf: BrlError, code: 'INCOMPLETE_SET', message: /^os\.img: partition set B is incomplete/ });
  t.throws(() => findSets(without(os, 'BOTTLEROCKET-HASH-A', 'BOTTLEROCKET-HASH-B'), 'os.img'), { code: 'NOT_A_BOTTLEROCKET_DISK' });
});
