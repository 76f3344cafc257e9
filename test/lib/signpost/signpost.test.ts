import test from 'ava';
import { open, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { readGpt, writeGpt } from '../../../src/lib/image/gpt.ts';
import {
  applySignpostCommand,
  gptprioNext,
  nextBoot,
  runSignpostCommand,
  signpostHasBootEverSucceeded,
  signpostStatus,
  type SignpostStatus,
} from '../../../src/lib/signpost/index.ts';
import { BrlError } from '../../../src/lib/core/errors.ts';
import { makeAbDisk, sgdiskAttributeBits, scratchDir } from './fixtures.ts';
import { assertSgdiskClean } from '../../helpers/oracles.ts';

async function host(): Promise<{ disk: string; root: string }> {
  const dir = await scratchDir('brl-signpost-');
  const disk = join(dir, 'disk.img');
  await makeAbDisk(disk);
  return { disk, root: join(dir, 'root') };
}

const flags = (status: SignpostStatus, label: 'A' | 'B'): string => {
  const { priority, triesLeft, successful } = status.sets.find((set) => set.label === label)!.flags;
  return `p${priority} t${triesLeft} s${successful ? 1 : 0}`;
};

test('walks the A/B state machine: stage, activate, boot, success — checked with sgdisk', async (t) => {
  const h = await host();
  const booted = await nextBoot(h);
  t.is(booted.booted, 'A');
  t.false(booted.triesDecremented);
  let status: SignpostStatus = booted;
  t.is(flags(status, 'A'), 'p1 t0 s1');
  t.is(flags(status, 'B'), 'p0 t0 s0');

  status = await runSignpostCommand(h, 'clear-inactive');
  t.is(flags(status, 'B'), 'p0 t0 s0');
  status = await runSignpostCommand(h, 'mark-inactive-valid');
  t.is(flags(status, 'B'), 'p0 t1 s0');
  status = await runSignpostCommand(h, 'upgrade-to-inactive');
  t.is(flags(status, 'B'), 'p2 t1 s0');
  t.is(flags(status, 'A'), 'p1 t0 s1');
  t.is(status.nextSet, 'B');
  assertSgdiskClean(t, h.disk);
  // BOOT-B is partition 4: priority 2 = bit 49, tries 1 = bit 52.
  t.deepEqual(sgdiskAttributeBits(h.disk, 4), [49, 52]);

  const intoB = await nextBoot(h);
  t.is(intoB.booted, 'B');
  t.true(intoB.triesDecremented);
  t.is(flags(intoB, 'B'), 'p2 t0 s0');
  t.false(await signpostHasBootEverSucceeded(h));
  status = await runSignpostCommand(h, 'mark-successful-boot');
  t.is(flags(status, 'B'), 'p2 t0 s1');
  t.true(status.hasBootEverSucceeded);
  t.true(await signpostHasBootEverSucceeded(h));
  t.deepEqual(sgdiskAttributeBits(h.disk, 7), [57]);
  assertSgdiskClean(t, h.disk);

  // Next boots stay on B without using tries.
  const again = await nextBoot(h);
  t.is(again.booted, 'B');
  t.false(again.triesDecremented);
});

test('a boot that never reaches mark-successful-boot falls back to the old set on the next boot', async (t) => {
  const h = await host();
  await nextBoot(h);
  for (const command of ['clear-inactive', 'mark-inactive-valid', 'upgrade-to-inactive'] as const) await runSignpostCommand(h, command);
  t.is((await nextBoot(h)).booted, 'B');
  const status = await nextBoot(h);
  t.is(status.booted, 'A');
  t.is(flags(status, 'B'), 'p2 t0 s0');
  t.false(status.sets.find((set) => set.label === 'B')!.willBoot);
  // From A again, B is not a rollback target.
  await t.throwsAsync(runSignpostCommand(h, 'rollback-to-inactive'), { instanceOf: BrlError, message: /set B would not boot/ });
});

test('cancel-upgrade returns to the staged state and rollback-to-inactive goes back to a good set', async (t) => {
  const h = await host();
  await nextBoot(h);
  for (const command of ['clear-inactive', 'mark-inactive-valid', 'upgrade-to-inactive'] as const) await runSignpostCommand(h, command);
  let status = await runSignpostCommand(h, 'cancel-upgrade');
  t.is(flags(status, 'B'), 'p0 t1 s0');
  t.is(flags(status, 'A'), 'p2 t0 s1');
  t.is(status.nextSet, 'A');
  status = await runSignpostCommand(h, 'upgrade-to-inactive');
  t.is(status.nextSet, 'B');
  await nextBoot(h);
  await runSignpostCommand(h, 'mark-successful-boot');
  status = await runSignpostCommand(h, 'rollback-to-inactive');
  t.is(flags(status, 'A'), 'p2 t0 s1');
  t.is(flags(status, 'B'), 'p1 t0 s1');
  t.is((await nextBoot(h)).booted, 'A');
});

test('upgrade-to-inactive refuses an unwritten set and a set already marked', async (t) => {
  const h = await host();
  await nextBoot(h);
  await runSignpostCommand(h, 'clear-inactive');
  await t.throwsAsync(runSignpostCommand(h, 'upgrade-to-inactive'), { message: /set B is not valid/ });
  await runSignpostCommand(h, 'mark-inactive-valid');
  await runSignpostCommand(h, 'upgrade-to-inactive');
  await t.throwsAsync(runSignpostCommand(h, 'upgrade-to-inactive'), { message: /already marked for upgrade/ });
});

test('commands need to know the running set, and a single-set disk has no inactive set', async (t) => {
  const h = await host();
  await t.throwsAsync(signpostStatus(h), { message: /cannot tell which partition set .* is running/ });
  const dir = await scratchDir('brl-signpost-');
  const single = { disk: join(dir, 'single.img'), root: join(dir, 'root') };
  await makeAbDisk(single.disk, { bootMiB: 1, rootMiB: 2, hashMiB: 1, twoSets: false });
  await nextBoot(single);
  t.is((await signpostStatus(single)).sets.length, 1);
  await t.throwsAsync(runSignpostCommand(single, 'clear-inactive'), { message: /single partition set/ });
});

test('the running set comes from the verity table on the kernel command line on a real host', async (t) => {
  const h = await host();
  const { table } = await readGpt(h.disk);
  const bootB = table.partitions.find((partition) => partition.name === 'BOTTLEROCKET-BOOT-B')!;
  const { mkdir, writeFile } = await import('node:fs/promises');
  await mkdir(join(h.root, 'proc'), { recursive: true });
  await writeFile(join(h.root, 'proc', 'cmdline'), `root=/dev/dm-0 dm-mod.create="root,,,ro,0 8 verity 1 PARTUUID=${bootB.uniqueGuid}/PARTNROFF=1 PARTUUID=${bootB.uniqueGuid}/PARTNROFF=2 4096 4096 1 1 sha256 00 00"\n`);
  t.is((await signpostStatus(h)).activeSet, 'B');
});

test('every cut point of an interrupted flag write leaves a disk GRUB boots from', async (t) => {
  const h = await host();
  await nextBoot(h);
  for (const command of ['clear-inactive', 'mark-inactive-valid'] as const) await runSignpostCommand(h, command);
  const before = await readFile(h.disk);
  const { table } = await readGpt(h.disk);
  const upgraded = applySignpostCommand(table, 'upgrade-to-inactive', 'A', h.disk);
  const { writeFile } = await import('node:fs/promises');
  for (let cut = 0; cut < 4; cut += 1) {
    await writeFile(h.disk, before);
    const handle = await open(h.disk, 'r+');
    const write = handle.write.bind(handle);
    let writes = 0;
    // Simulated power loss: the cut-th write lands only its first 100 bytes, later writes never happen.
    handle.write = (async (buffer: Buffer, offset: number, length: number, position: number) => {
      if (writes++ === cut) {
        await write(buffer, offset, Math.min(length, 100), position);
        throw new Error('power lost');
      }
      return write(buffer, offset, length, position);
    }) as typeof handle.write;
    await t.throwsAsync(writeGpt(handle, upgraded), { message: 'power lost' });
    await handle.close();
    const after = await readGpt(h.disk);
    const boot = gptprioNext(after.table, h.disk);
    t.true(boot.booted.label === 'A' || boot.booted.label === 'B', `cut ${cut}`);
    const b = after.table.partitions.find((partition) => partition.name === 'BOTTLEROCKET-BOOT-B')!;
    // Either the old staged flags or the complete new ones, never a mix.
    t.true([0x0010_0000_0000_0000n, 0x0012_0000_0000_0000n].includes(b.attributes), `cut ${cut}: ${b.attributes.toString(16)}`);
  }
});
