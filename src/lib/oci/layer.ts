// One image layer from a RootTree: a tar in path order with fixed times and no owner names, gzipped
// reproducibly, hashed on the way (diff id over the tar, digest over the gzip), streamed to a file.
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { pack, type Pack } from 'tar-stream';
import { reproducibleGzip } from './gzip.ts';
import type { RootTree, TreeEntry } from './root-tree.ts';

type EntryHeader = Parameters<Pack['entry']>[0];

export interface LayerResult {
  /** `sha256:` of the uncompressed tar (the config's `rootfs.diff_ids`). */
  diffId: string;
  /** `sha256:` of the gzip (the manifest's layer descriptor). */
  digest: string;
  size: number;
  uncompressedSize: number;
  entries: number;
}

/** Writes the layer of `tree` to `path`; every entry's mtime is `epoch`, no atime or ctime. */
export async function writeLayer(tree: RootTree, path: string, epoch: number): Promise<LayerResult> {
  const entries = tree.sorted();
  const tar = pack();
  const uncompressed = hashTap();
  const compressed = hashTap();
  // tar-stream's packer is a streamx Readable, which Node's pipeline drives like its own.
  const written = pipeline(tar as unknown as Readable, uncompressed.stream, ...reproducibleGzip(), compressed.stream, createWriteStream(path));
  const producing = packEntries(tar, entries, new Date(epoch * 1000));
  // If writing fails, packing stops at the next entry; if packing fails, the tar stream is destroyed.
  await Promise.all([written, producing.catch((error: unknown) => {
    tar.destroy(error as Error);
    throw error;
  })]);
  return {
    diffId: `sha256:${uncompressed.hex()}`,
    digest: `sha256:${compressed.hex()}`,
    size: compressed.bytes(),
    uncompressedSize: uncompressed.bytes(),
    entries: entries.length,
  };
}

async function packEntries(tar: Pack, entries: readonly TreeEntry[], mtime: Date): Promise<void> {
  // Hard links: the first path (in layer order) with given staged bytes carries them, later ones link to it.
  const firstPathOf = new Map<string, string>();
  for (const entry of entries) {
    const header: EntryHeader = { name: entry.path, mode: entry.mode, uid: entry.uid, gid: entry.gid, mtime, uname: '', gname: '' };
    if (entry.type === 'directory') {
      await addEntry(tar, { ...header, name: `${entry.path}/`, type: 'directory' });
    } else if (entry.type === 'symlink') {
      await addEntry(tar, { ...header, type: 'symlink', linkname: entry.target ?? '' });
    } else {
      const staged = entry.staged;
      if (staged === undefined) throw new Error(`internal: file entry ${entry.path} has no content`);
      const first = firstPathOf.get(staged.file);
      if (first !== undefined) {
        await addEntry(tar, { ...header, type: 'link', linkname: first });
        continue;
      }
      firstPathOf.set(staged.file, entry.path);
      const sink = tar.entry({ ...header, type: 'file', size: staged.size });
      await pipeline(createReadStream(staged.file), sink);
    }
  }
  tar.finalize();
}

function addEntry(tar: Pack, header: EntryHeader): Promise<void> {
  return new Promise((resolve, reject) => {
    tar.entry(header, (error) => (error ? reject(error) : resolve()));
  });
}

function hashTap(): { stream: Transform; hex: () => string; bytes: () => number } {
  const hash = createHash('sha256');
  let bytes = 0;
  let hex: string | undefined;
  const stream = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      hash.update(chunk);
      bytes += chunk.length;
      callback(null, chunk);
    },
  });
  return { stream, hex: () => (hex ??= hash.digest('hex')), bytes: () => bytes };
}
