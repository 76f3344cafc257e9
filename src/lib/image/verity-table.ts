// The dm-verity table of a Bottlerocket root (`dm-mod.create`, image-layout.md §6): its model, the one writer and the one parser.
import { BrlError, ExitCode } from '../core/errors.ts';
import { readExt4File } from './ext4-read.ts';
import type { BlockReader } from './image-reader.ts';

/** A device as the kernel finds it at boot: by GPT PARTUUID, optionally the partition `partNrOff` after it. */
export interface PartitionRef {
  /** A PARTUUID, or a GRUB variable (`$boot_uuid`) that GRUB expands to one. */
  partUuid: string;
  partNrOff?: number;
}

/** A read-only dm device with one `verity` target (hash type 1) over the whole data device. */
export interface VerityTable {
  deviceName: string;
  dataDevice: PartitionRef;
  hashDevice: PartitionRef;
  dataBlockSize: number;
  hashBlockSize: number;
  dataBlocks: number;
  /** Hash-device block where the tree starts (1: block 0 holds the superblock). */
  hashStartBlock: number;
  algorithm: string;
  /** Lowercase hex. */
  rootHash: string;
  /** Lowercase hex, or `-` for none. */
  salt: string;
  optionalArgs: string[];
}

const SECTOR_BYTES = 512;
const PARTUUID = /^PARTUUID=(\$[A-Za-z_][A-Za-z0-9_]*|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})(?:\/PARTNROFF=(\d+))?$/;

/** Bottlerocket's table (§6): ROOT and HASH at PARTNROFF=1 and 2 from the booted BOOT, sha256, 4 KiB blocks, tree after the superblock. */
export function bottlerocketVerityTable(verity: { dataBlocks: number; rootHash: string; salt: string }): VerityTable {
  return {
    deviceName: 'root',
    dataDevice: { partUuid: '$boot_uuid', partNrOff: 1 },
    hashDevice: { partUuid: '$boot_uuid', partNrOff: 2 },
    dataBlockSize: 4096,
    hashBlockSize: 4096,
    dataBlocks: verity.dataBlocks,
    hashStartBlock: 1,
    algorithm: 'sha256',
    rootHash: verity.rootHash,
    salt: verity.salt,
    optionalArgs: ['restart_on_corruption', 'ignore_zero_blocks'],
  };
}

function renderRef(ref: PartitionRef): string {
  return `PARTUUID=${ref.partUuid}${ref.partNrOff === undefined ? '' : `/PARTNROFF=${ref.partNrOff}`}`;
}

/** The `dm-mod.create` string, single-spaced as the kernel and upstream write it. */
export function renderVerityTable(table: VerityTable): string {
  const sectors = (table.dataBlocks * table.dataBlockSize) / SECTOR_BYTES;
  const optional = table.optionalArgs.length === 0 ? [] : [String(table.optionalArgs.length), ...table.optionalArgs];
  return `${table.deviceName},,,ro,` + [
    0, sectors, 'verity', 1, renderRef(table.dataDevice), renderRef(table.hashDevice), table.dataBlockSize, table.hashBlockSize,
    table.dataBlocks, table.hashStartBlock, table.algorithm, table.rootHash, table.salt, ...optional,
  ].join(' ');
}

function malformed(source: string, text: string, problem: string): BrlError {
  return new BrlError(`${source}: dm-verity table "${text}" ${problem}`, {
    exitCode: ExitCode.verifyFailed,
    code: 'BAD_VERITY_TABLE',
    hint: 'the table is written by `brl build variant`; rebuild the image',
  });
}

/** Parses a `dm-mod.create` verity table; anything else is a `BAD_VERITY_TABLE` error naming `source` and the field. */
export function parseVerityTable(text: string, source = 'dm-mod.create'): VerityTable {
  const fail = (problem: string): BrlError => malformed(source, text, problem);
  const [deviceName = '', uuid, minor, flags, ...rest] = text.split(',');
  if (rest.length === 0) throw fail('is not <name>,<uuid>,<minor>,<flags>,<table>');
  if (!/^[A-Za-z0-9_.-]+$/.test(deviceName)) throw fail(`has a bad device name "${deviceName}"`);
  if (uuid !== '' || minor !== '') throw fail('sets a dm uuid or minor (brl leaves both empty)');
  if (flags !== 'ro') throw fail(`has flags "${flags}", not ro`);
  const fields = rest.join(',').trim().split(/\s+/);
  if (fields.length < 13) throw fail(`has ${fields.length} target fields, fewer than the 13 a verity target needs`);
  const [start, sectors, target, version, dataDevice, hashDevice, dataBlockSize, hashBlockSize, dataBlocks, hashStart, algorithm, rootHash, salt] = fields as [string, ...string[]];
  const integer = (name: string, value: string | undefined, minimum: number): number => {
    const number = /^\d+$/.test(value ?? '') ? Number(value) : NaN;
    if (!Number.isSafeInteger(number) || number < minimum) throw fail(`has ${name} "${value}", not an integer ≥ ${minimum}`);
    return number;
  };
  const blockSize = (name: string, value: string | undefined): number => {
    const size = integer(name, value, SECTOR_BYTES);
    if ((size & (size - 1)) !== 0) throw fail(`has ${name} ${size}, not a power of two`);
    return size;
  };
  const ref = (name: string, value: string | undefined): PartitionRef => {
    const match = PARTUUID.exec(value ?? '');
    if (!match) throw fail(`has ${name} "${value}", not PARTUUID=<uuid>[/PARTNROFF=<n>]`);
    const partUuid = match[1]!.startsWith('$') ? match[1]! : match[1]!.toLowerCase();
    return match[2] === undefined ? { partUuid } : { partUuid, partNrOff: Number(match[2]) };
  };
  if (start !== '0') throw fail(`starts at sector "${start}", not 0`);
  if (target !== 'verity') throw fail(`has target "${target}", not verity`);
  if (version !== '1') throw fail(`has verity hash type "${version}", not 1`);
  const table: VerityTable = {
    deviceName,
    dataDevice: ref('data device', dataDevice),
    hashDevice: ref('hash device', hashDevice),
    dataBlockSize: blockSize('data block size', dataBlockSize),
    hashBlockSize: blockSize('hash block size', hashBlockSize),
    dataBlocks: integer('data blocks', dataBlocks, 1),
    hashStartBlock: integer('hash start block', hashStart, 0),
    algorithm: /^[a-z0-9-]+$/.test(algorithm ?? '') ? algorithm! : '',
    rootHash: rootHash ?? '',
    salt: salt ?? '',
    optionalArgs: [],
  };
  if (table.algorithm === '') throw fail(`has hash algorithm "${algorithm}"`);
  if (!/^([0-9a-f]{2})+$/.test(table.rootHash)) throw fail(`has root hash "${rootHash}", not lowercase hex`);
  if (table.salt !== '-' && !/^([0-9a-f]{2})+$/.test(table.salt)) throw fail(`has salt "${salt}", not lowercase hex or -`);
  const length = integer('length in sectors', sectors, 1);
  if (length * SECTOR_BYTES !== table.dataBlocks * table.dataBlockSize) {
    throw fail(`is ${length} sectors long but covers ${table.dataBlocks} blocks of ${table.dataBlockSize} bytes`);
  }
  if (fields.length > 13) {
    const count = integer('optional argument count', fields[13], 1);
    table.optionalArgs = fields.slice(14);
    if (table.optionalArgs.length !== count) throw fail(`announces ${count} optional arguments but has ${table.optionalArgs.length}`);
  }
  return table;
}

/** The table in a grub.cfg (`set dm_verity_root="…"`, as `variant/grub.ts` writes it). */
export function verityTableOfGrubConfig(config: string, source: string): VerityTable {
  const line = /^set dm_verity_root="([^"]*)"$/m.exec(config);
  if (!line) {
    throw new BrlError(`${source} sets no dm_verity_root`, {
      exitCode: ExitCode.verifyFailed,
      code: 'NO_VERITY_TABLE',
      hint: 'the table is written by `brl build variant`; rebuild the image',
    });
  }
  return parseVerityTable(line[1]!, source);
}

/**
 * The table in `/grub/grub.cfg` of the BOOT filesystem at byte `bootOffset` of `disk`, read natively
 * (hosts have no debugfs). `source` names the partition in errors: `BAD_EXT4`, `NO_GRUB_CONFIG`,
 * `NO_VERITY_TABLE`, `BAD_VERITY_TABLE`.
 */
export async function readBootVerityTable(disk: BlockReader, bootOffset: number, source: string): Promise<VerityTable> {
  const config = await readExt4File(disk, bootOffset, '/grub/grub.cfg', source);
  if (!config) {
    throw new BrlError(`${source} has no /grub/grub.cfg`, {
      exitCode: ExitCode.verifyFailed,
      code: 'NO_GRUB_CONFIG',
      hint: 'the BOOT filesystem is written by `brl build variant`; rebuild the image',
    });
  }
  return verityTableOfGrubConfig(config.toString('utf8'), `${source}'s /grub/grub.cfg`);
}
