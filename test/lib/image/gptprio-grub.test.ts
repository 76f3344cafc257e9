// GRUB's gptprio module logic (packages-specs/grub/gptprio-core.c), compiled for the host, against signpost's TS model.
import test from 'ava';
import { execFile } from 'node:child_process';
import { open, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { crc32 } from 'node:zlib';
import { readGpt, withAttributes, writeGpt, type GptTable } from '../../../src/lib/image/gpt.ts';
import { decodeGptPrio, encodeGptPrio, type GptPrioFlags } from '../../../src/lib/image/gptprio.ts';
import { gptprioNext } from '../../../src/lib/signpost/index.ts';
import { BrlError } from '../../../src/lib/core/errors.ts';
import { brlInstallDir } from '../../../src/lib/core/paths.ts';
import { makeAbDisk, scratchDir, sgdiskVerify } from '../signpost/fixtures.ts';

const run = promisify(execFile);
const grubDir = join(brlInstallDir, 'packages-specs', 'grub');
let harness: string;

test.before(async () => {
  const dir = await scratchDir('brl-gptprio-c-');
  harness = join(dir, 'gptprio-harness');
  await run('gcc', [
    '-std=gnu99', '-Wall', '-Wextra', '-Werror', '-O2', `-I${grubDir}`, '-o', harness,
    join(brlInstallDir, 'test', 'lib', 'image', 'gptprio-harness.c'), join(grubDir, 'gptprio-core.c'),
  ]);
});

// BOOT-A is partition 1 and BOOT-B partition 4 in the fixture; PRIVATE is 7.
const BOOT = { A: 1, B: 4 } as const;

async function diskWith(flags: { A: GptPrioFlags; B: GptPrioFlags }, otherBits = 0n): Promise<{ disk: string; table: GptTable }> {
  const disk = join(await scratchDir('brl-gptprio-disk-'), 'disk.img');
  let table = await makeAbDisk(disk);
  for (const label of ['A', 'B'] as const) table = withAttributes(table, BOOT[label], encodeGptPrio(otherBits, flags[label]));
  await writeGpt(disk, table);
  return { disk, table };
}

interface HarnessResult {
  number: number;
  uuid: string;
  decremented: boolean;
}

async function grubNext(disk: string): Promise<HarnessResult> {
  const { stdout } = await run(harness, ['next', disk]);
  const match = /^number=(\d+) uuid=([0-9a-f-]{36}) tries=\d+ decremented=([01])$/m.exec(stdout);
  if (!match) throw new Error(`unexpected harness output: ${stdout}`);
  return { number: Number(match[1]), uuid: match[2]!, decremented: match[3] === '1' };
}

const flagsOn = async (disk: string, number: number): Promise<GptPrioFlags> =>
  decodeGptPrio((await readGpt(disk)).table.partitions.find((partition) => partition.number === number)!.attributes);

/** Both headers' CRC32s and both entry arrays' CRC32s recomputed independently of the writer. */
async function assertCrcs(t: import('ava').ExecutionContext, disk: string): Promise<void> {
  const bytes = await readFile(disk);
  const lastLba = bytes.length / 512 - 1;
  for (const lba of [1, lastLba]) {
    const header = Buffer.from(bytes.subarray(lba * 512, lba * 512 + 512));
    const size = header.readUInt32LE(12);
    const stored = header.readUInt32LE(16);
    header.writeUInt32LE(0, 16);
    t.is(crc32(header.subarray(0, size)), stored, `header CRC at LBA ${lba}`);
    const entriesLba = Number(header.readBigUInt64LE(72));
    const entries = bytes.subarray(entriesLba * 512, entriesLba * 512 + header.readUInt32LE(80) * header.readUInt32LE(84));
    t.is(crc32(entries), header.readUInt32LE(88), `entries CRC of the header at LBA ${lba}`);
  }
}

const cases: Array<{ name: string; A: GptPrioFlags; B: GptPrioFlags; boots: 'A' | 'B'; decrements: boolean }> = [
  { name: 'a fresh image boots A without using a try', A: { priority: 1, triesLeft: 0, successful: true }, B: { priority: 0, triesLeft: 0, successful: false }, boots: 'A', decrements: false },
  { name: 'a staged B (priority 2, one try) boots and its try is used', A: { priority: 1, triesLeft: 0, successful: true }, B: { priority: 2, triesLeft: 1, successful: false }, boots: 'B', decrements: true },
  { name: 'tries exhausted on B falls back to the next bank A', A: { priority: 1, triesLeft: 0, successful: true }, B: { priority: 2, triesLeft: 0, successful: false }, boots: 'A', decrements: false },
  { name: 'a successful B keeps booting without tries', A: { priority: 1, triesLeft: 0, successful: true }, B: { priority: 2, triesLeft: 0, successful: true }, boots: 'B', decrements: false },
  { name: 'equal priorities go to the lower partition number', A: { priority: 2, triesLeft: 0, successful: true }, B: { priority: 2, triesLeft: 3, successful: false }, boots: 'A', decrements: false },
  { name: 'priority 0 never boots, even when successful', A: { priority: 0, triesLeft: 0, successful: true }, B: { priority: 1, triesLeft: 2, successful: false }, boots: 'B', decrements: true },
  { name: 'a chosen bank with tries left uses one even when marked successful', A: { priority: 1, triesLeft: 0, successful: true }, B: { priority: 15, triesLeft: 15, successful: true }, boots: 'B', decrements: true },
];

for (const c of cases) {
  test(`C gptprio.next agrees with the TS model: ${c.name}`, async (t) => {
    const { disk, table } = await diskWith(c);
    const model = gptprioNext(table, disk);
    const result = await grubNext(disk);
    t.is(model.booted.label, c.boots);
    t.is(result.number, BOOT[c.boots]);
    t.is(result.uuid, model.booted.boot.uniqueGuid.toLowerCase());
    t.is(result.decremented, c.decrements);
    t.is(model.decremented, c.decrements);
    const expected = decodeGptPrio(model.table.partitions.find((partition) => partition.number === BOOT[c.boots])!.attributes);
    t.deepEqual(await flagsOn(disk, BOOT[c.boots]), expected);
    t.regex(sgdiskVerify(disk), /No problems found/);
    t.deepEqual((await readGpt(disk)).problems, []);
    await assertCrcs(t, disk);
  });
}

test('C gptprio.next keeps every other attribute bit of the chosen entry', async (t) => {
  const legacyBootableAndBit60 = (1n << 2n) | (1n << 60n);
  const { disk } = await diskWith({ A: { priority: 1, triesLeft: 0, successful: true }, B: { priority: 2, triesLeft: 2, successful: false } }, legacyBootableAndBit60);
  await grubNext(disk);
  const attributes = (await readGpt(disk)).table.partitions.find((partition) => partition.number === BOOT.B)!.attributes;
  t.is(attributes, legacyBootableAndBit60 | (2n << 48n) | (1n << 52n));
});

test('C gptprio.next on a disk with nothing bootable fails like the model and writes nothing', async (t) => {
  const { disk, table } = await diskWith({ A: { priority: 0, triesLeft: 0, successful: true }, B: { priority: 2, triesLeft: 0, successful: false } });
  t.throws(() => gptprioNext(table, disk), { instanceOf: BrlError, message: /no bootable partition set/ });
  const before = await readFile(disk);
  const error = await t.throwsAsync(run(harness, ['next', disk]));
  t.regex((error as { stderr?: string }).stderr ?? '', /no bootable BOOT partition/);
  t.true(before.equals(await readFile(disk)));
});

test('C gptprio.next exhausts a staged bank\'s tries over boots, then falls back to A', async (t) => {
  const { disk } = await diskWith({ A: { priority: 1, triesLeft: 0, successful: true }, B: { priority: 2, triesLeft: 2, successful: false } });
  const boots = [];
  for (let boot = 0; boot < 4; boot += 1) boots.push((await grubNext(disk)).number);
  t.deepEqual(boots, [BOOT.B, BOOT.B, BOOT.A, BOOT.A]);
  t.deepEqual(await flagsOn(disk, BOOT.B), { priority: 2, triesLeft: 0, successful: false });
  t.regex(sgdiskVerify(disk), /No problems found/);
});

test('C gptprio.next reads the backup when the primary header is damaged and repairs both copies', async (t) => {
  const { disk } = await diskWith({ A: { priority: 1, triesLeft: 0, successful: true }, B: { priority: 2, triesLeft: 1, successful: false } });
  const handle = await open(disk, 'r+');
  await handle.write(Buffer.from('garbage!'), 0, 8, 512);
  await handle.close();
  t.is((await readGpt(disk)).source, 'backup');
  const result = await grubNext(disk);
  t.is(result.number, BOOT.B);
  t.true(result.decremented);
  const after = await readGpt(disk);
  t.is(after.source, 'primary');
  t.deepEqual(after.problems, []);
  t.deepEqual(await flagsOn(disk, BOOT.B), { priority: 2, triesLeft: 0, successful: false });
  t.regex(sgdiskVerify(disk), /No problems found/);
  await assertCrcs(t, disk);
});

test('C gptprio.label finds PRIVATE by its GPT partition name, and only an exact name', async (t) => {
  const { disk } = await diskWith({ A: { priority: 1, triesLeft: 0, successful: true }, B: { priority: 0, triesLeft: 0, successful: false } });
  t.is((await run(harness, ['label', disk, 'BOTTLEROCKET-PRIVATE'])).stdout.trim(), 'number=7');
  t.is((await run(harness, ['label', disk, 'BOTTLEROCKET-BOOT-B'])).stdout.trim(), 'number=4');
  await t.throwsAsync(run(harness, ['label', disk, 'BOTTLEROCKET-PRIVAT']), { message: /no partition with that label/ });
});

test('C gptprio.next refuses a disk without a GPT', async (t) => {
  const disk = join(await scratchDir('brl-gptprio-disk-'), 'blank.img');
  await writeFile(disk, Buffer.alloc(4 * 1024 * 1024));
  await t.throwsAsync(run(harness, ['next', disk]), { message: /no valid GPT/ });
});
