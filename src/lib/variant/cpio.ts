// A reproducible cpio archive in the kernel's initramfs format ("newc", 070701): entries in the
// order given, inode numbers by position, one fixed mtime, owner root.

export type CpioEntry =
  | { kind: 'dir'; path: string; mode: number }
  | { kind: 'file'; path: string; mode: number; data: Buffer }
  | { kind: 'char'; path: string; mode: number; major: number; minor: number };

const TYPE_BITS = { dir: 0o040000, file: 0o100000, char: 0o020000 } as const;

function pad4(length: number): Buffer {
  return Buffer.alloc((4 - (length % 4)) % 4);
}

function header(fields: number[], name: string): Buffer {
  const text = `070701${fields.map((value) => value.toString(16).padStart(8, '0')).join('')}`;
  const nameBytes = Buffer.from(`${name}\0`, 'utf8');
  const head = Buffer.concat([Buffer.from(text, 'latin1'), nameBytes]);
  return Buffer.concat([head, pad4(head.length)]);
}

/** The archive, with parents listed before children by the caller; paths without a leading slash. */
export function writeCpio(entries: readonly CpioEntry[], mtime: number): Buffer {
  const parts: Buffer[] = [];
  entries.forEach((entry, index) => {
    const data = entry.kind === 'file' ? entry.data : Buffer.alloc(0);
    const rdev = entry.kind === 'char' ? [entry.major, entry.minor] : [0, 0];
    const fields = [
      index + 1, // inode
      TYPE_BITS[entry.kind] | (entry.mode & 0o7777),
      0, 0, // uid, gid
      entry.kind === 'dir' ? 2 : 1, // nlink
      mtime,
      data.length,
      0, 0, // device of the archive's files
      rdev[0] as number, rdev[1] as number,
      Buffer.byteLength(entry.path, 'utf8') + 1,
      0, // checksum (unused by newc)
    ];
    parts.push(header(fields, entry.path), data, pad4(data.length));
  });
  parts.push(header([0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 'TRAILER!!!'.length + 1, 0], 'TRAILER!!!'));
  return Buffer.concat(parts);
}
