import test from 'ava';
import { execFileSync } from 'node:child_process';
import { mkdir, open, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BrlError } from '../../../src/lib/core/errors.ts';
import { handleReader } from '../../../src/lib/image/image-reader.ts';
import {
  bottlerocketVerityTable, parseVerityTable, readBootVerityTable, renderVerityTable, verityTableOfGrubConfig, type VerityTable,
} from '../../../src/lib/image/verity-table.ts';
import { scratchDir } from '../signpost/fixtures.ts';

const rootHash = 'cd'.repeat(32);
const salt = 'ef'.repeat(32);
const SPEC_TABLE = `root,,,ro,0 8000 verity 1 PARTUUID=$boot_uuid/PARTNROFF=1 PARTUUID=$boot_uuid/PARTNROFF=2 4096 4096 1000 1 sha256 ${rootHash} ${salt} 2 restart_on_corruption ignore_zero_blocks`;

test('the writer renders image-layout.md §6\'s table, single-spaced', (t) => {
  t.is(renderVerityTable(bottlerocketVerityTable({ dataBlocks: 1000, rootHash, salt })), SPEC_TABLE);
});

test('parse(render(table)) is the table, and render(parse(text)) the text, for every field', (t) => {
  const tables: VerityTable[] = [
    bottlerocketVerityTable({ dataBlocks: 1000, rootHash, salt }),
    {
      deviceName: 'usr', dataDevice: { partUuid: '0f0e0d0c-0b0a-4908-8706-050403020100' }, hashDevice: { partUuid: '$boot_uuid', partNrOff: 7 },
      dataBlockSize: 1024, hashBlockSize: 512, dataBlocks: 3, hashStartBlock: 0, algorithm: 'sha512', rootHash: 'ab'.repeat(64), salt: '-', optionalArgs: [],
    },
  ];
  for (const table of tables) {
    const text = renderVerityTable(table);
    t.deepEqual(parseVerityTable(text), table);
    t.is(renderVerityTable(parseVerityTable(text)), text);
  }
  t.deepEqual(parseVerityTable(SPEC_TABLE), bottlerocketVerityTable({ dataBlocks: 1000, rootHash, salt }));
});

test('GRUB\'s expansion of $boot_uuid parses to the booted BOOT\'s PARTUUID, lowercased', (t) => {
  const expanded = SPEC_TABLE.replaceAll('$boot_uuid', 'ABCDEF01-2345-4678-89AB-CDEF01234567');
  t.deepEqual(parseVerityTable(expanded).hashDevice, { partUuid: 'abcdef01-2345-4678-89ab-cdef01234567', partNrOff: 2 });
});

test('malformed tables are BAD_VERITY_TABLE errors that name the source and the field', (t) => {
  const cases: [string, RegExp][] = [
    ['root 0 8000 verity', /is not <name>,<uuid>,<minor>,<flags>,<table>/],
    [SPEC_TABLE.replace('root,,,ro', 'root,,,rw'), /has flags "rw", not ro/],
    [SPEC_TABLE.replace('root,,,ro', 'root,u,,ro'), /sets a dm uuid or minor/],
    [SPEC_TABLE.replace(' 2 restart_on_corruption ignore_zero_blocks', '').replace(` ${salt}`, ''), /has 12 target fields, fewer than the 13/],
    [SPEC_TABLE.replace('ro,0 8000', 'ro,8 8000'), /starts at sector "8", not 0/],
    [SPEC_TABLE.replace('ro,0 8000', 'ro,0 8008'), /is 8008 sectors long but covers 1000 blocks of 4096 bytes/],
    [SPEC_TABLE.replace(' verity 1 ', ' linear 1 '), /has target "linear", not verity/],
    [SPEC_TABLE.replace(' verity 1 ', ' verity 0 '), /has verity hash type "0", not 1/],
    [SPEC_TABLE.replace('PARTUUID=$boot_uuid/PARTNROFF=2', '/dev/sda3'), /has hash device "\/dev\/sda3", not PARTUUID=<uuid>\[\/PARTNROFF=<n>\]/],
    [SPEC_TABLE.replace('4096 4096 1000', '4096 4000 1000'), /has hash block size 4000, not a power of two/],
    [SPEC_TABLE.replace(' 1000 1 sha256', ' 1e3 1 sha256'), /has data blocks "1e3", not an integer ≥ 1/],
    [SPEC_TABLE.replace(rootHash, rootHash.toUpperCase()), /has root hash "CDCD.*", not lowercase hex/],
    [SPEC_TABLE.replace(salt, 'xyz'), /has salt "xyz", not lowercase hex or -/],
    [SPEC_TABLE.replace(' 2 restart_on_corruption', ' 3 restart_on_corruption'), /announces 3 optional arguments but has 2/],
  ];
  for (const [text, message] of cases) {
    const error = t.throws(() => parseVerityTable(text, 'BOOT-A\'s /grub/grub.cfg'), { instanceOf: BrlError, code: 'BAD_VERITY_TABLE' }, text);
    t.true(error?.message.startsWith(`BOOT-A's /grub/grub.cfg: dm-verity table "${text}" `), text);
    t.regex(error?.message ?? '', message);
  }
});

test('a grub.cfg without set dm_verity_root is a NO_VERITY_TABLE error', (t) => {
  t.throws(() => verityTableOfGrubConfig('set default="0"\n', 'grub.cfg'), { instanceOf: BrlError, code: 'NO_VERITY_TABLE', message: 'grub.cfg sets no dm_verity_root' });
  t.deepEqual(verityTableOfGrubConfig(`set default="0"\nset dm_verity_root="${SPEC_TABLE}"\n`, 'grub.cfg').rootHash, rootHash);
});

async function bootFilesystem(files: Record<string, string>): Promise<string> {
  const dir = await scratchDir('brl-boot-');
  const tree = join(dir, 'tree');
  await mkdir(tree);
  for (const [path, text] of Object.entries(files)) {
    await mkdir(join(tree, path, '..'), { recursive: true });
    await writeFile(join(tree, path), text);
  }
  const image = join(dir, 'boot.ext4');
  execFileSync('mkfs.ext4', ['-q', '-F', '-O', '^has_journal', '-d', tree, image, '4M'], { stdio: 'pipe' });
  return image;
}

async function readBoot(image: string, offset = 0): Promise<VerityTable> {
  const handle = await open(image, 'r');
  try {
    return await readBootVerityTable(handleReader(handle), offset, 'BOOT-A');
  } finally {
    await handle.close();
  }
}

test('readBootVerityTable reads grub.cfg out of a real ext4 BOOT natively and names what is missing', async (t) => {
  const good = await bootFilesystem({ 'grub/grub.cfg': `set default="0"\nset dm_verity_root="${SPEC_TABLE}"\n` });
  t.deepEqual(await readBoot(good), bottlerocketVerityTable({ dataBlocks: 1000, rootHash, salt }));
  await t.throwsAsync(readBoot(good, 4096), { instanceOf: BrlError, code: 'BAD_EXT4', message: 'BOOT-A: no ext4 superblock' });
  const empty = await bootFilesystem({ 'vmlinuz': 'kernel' });
  await t.throwsAsync(readBoot(empty), { instanceOf: BrlError, code: 'NO_GRUB_CONFIG', message: 'BOOT-A has no /grub/grub.cfg' });
  const bad = await bootFilesystem({ 'grub/grub.cfg': 'set dm_verity_root="root,,,ro,0 8 verity"\n' });
  await t.throwsAsync(readBoot(bad), { instanceOf: BrlError, code: 'BAD_VERITY_TABLE', message: /^BOOT-A's \/grub\/grub.cfg: dm-verity table "root,,,ro,0 8 verity" has 3 target fields/ });
});
