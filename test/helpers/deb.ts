// Hand-made debs for tests: an ar archive of debian-binary, control.tar.gz and data.tar.gz, with
// data entries exactly as given (including ones dpkg-deb --build would never write).
import { writeFile } from 'node:fs/promises';
import { gzipSync } from 'node:zlib';
import tar from 'tar-stream';

export interface DebEntry {
  name: string;
  type?: 'file' | 'directory' | 'symlink' | 'link';
  content?: string;
  linkname?: string;
  mode?: number;
}

async function tarGz(entries: readonly DebEntry[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  const done = (async () => {
    for await (const chunk of pack) chunks.push(chunk as Buffer);
  })();
  for (const entry of entries) {
    const type = entry.type ?? 'file';
    const header = { name: entry.name, type, mode: entry.mode ?? (type === 'directory' ? 0o755 : 0o644), mtime: new Date(1_600_000_000_000), ...(entry.linkname === undefined ? {} : { linkname: entry.linkname }) };
    if (type === 'file') pack.entry(header, entry.content ?? '');
    else pack.entry(header);
  }
  pack.finalize();
  await done;
  return gzipSync(Buffer.concat(chunks));
}

function arMember(name: string, data: Buffer): Buffer {
  const field = (value: string, width: number): string => value.padEnd(width, ' ');
  const header = Buffer.from(`${field(name, 16)}${field('0', 12)}${field('0', 6)}${field('0', 6)}${field('100644', 8)}${field(String(data.length), 10)}\`\n`, 'ascii');
  return Buffer.concat([header, data, data.length % 2 === 1 ? Buffer.from('\n') : Buffer.alloc(0)]);
}

/** Writes a deb named `name` whose data tar holds `entries` in order, and whose conffiles are `conffiles`. */
export async function writeDeb(path: string, name: string, entries: readonly DebEntry[], conffiles: readonly string[] = []): Promise<void> {
  const control = `Package: ${name}\nVersion: 1.0\nArchitecture: all\nMaintainer: brl tests <tests@example.invalid>\nDescription: test package\n ${name}\n`;
  const controlEntries: DebEntry[] = [{ name: './control', content: control }];
  if (conffiles.length > 0) controlEntries.push({ name: './conffiles', content: `${conffiles.join('\n')}\n` });
  await writeFile(path, Buffer.concat([
    Buffer.from('!<arch>\n'),
    arMember('debian-binary', Buffer.from('2.0\n')),
    arMember('control.tar.gz', await tarGz(controlEntries)),
    arMember('data.tar.gz', await tarGz(entries)),
  ]));
}
