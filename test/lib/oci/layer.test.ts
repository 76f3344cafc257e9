import test from 'ava';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { gunzipSync } from 'node:zlib';
import tar from 'tar-stream';
import { readDebControl } from '../../../src/lib/oci/deb.ts';
import { renderDpkgStatus } from '../../../src/lib/oci/dpkg-status.ts';
import { gzipHeader, reproducibleGzip } from '../../../src/lib/oci/gzip.ts';
import { writeLayer } from '../../../src/lib/oci/layer.ts';
import { parseRegistryTarget, registryBaseUrl } from '../../../src/lib/oci/reference.ts';
import { matchesDropPattern, mergeUsr, normalizeEntryPath, RootTree } from '../../../src/lib/oci/root-tree.ts';
import { writeDeb, type DebEntry } from '../../helpers/deb.ts';

const run = promisify(execFile);

async function gzipOf(bytes: Buffer): Promise<Buffer> {
  const chunks: Buffer[] = [];
  await pipeline(Readable.from([bytes.subarray(0, 1000), bytes.subarray(1000)]), ...reproducibleGzip(), async (source: AsyncIterable<Buffer>) => {
    for await (const chunk of source) chunks.push(chunk);
  });
  return Buffer.concat(chunks);
}

interface ListedEntry {
  name: string;
  type: string;
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  uname: string;
  linkname: string | null;
  content: string;
}

async function listLayer(path: string): Promise<ListedEntry[]> {
  const entries: ListedEntry[] = [];
  const extract = tar.extract();
  const reading = (async () => {
    for await (const entry of extract) {
      const chunks: Buffer[] = [];
      for await (const chunk of entry) chunks.push(chunk as Buffer);
      const { name, type, mode, uid, gid, mtime, uname, linkname } = entry.header;
      entries.push({ name, type, mode, uid, gid, mtime: mtime.getTime() / 1000, uname, linkname, content: Buffer.concat(chunks).toString('utf8') });
    }
  })();
  extract.end(gunzipSync(await readFile(path)));
  await reading;
  return entries;
}

async function treeFromDebs(debs: { name: string; entries: DebEntry[]; conffiles?: string[] }[]): Promise<{ tree: RootTree; dir: string; md5s: Map<string, string>[] }> {
  const dir = await mkdtemp(join(tmpdir(), 'brl-oci-'));
  await mkdir(join(dir, 'staging'));
  const tree = new RootTree(join(dir, 'staging'));
  const md5s: Map<string, string>[] = [];
  for (const deb of debs) {
    const path = join(dir, `${deb.name}.deb`);
    await writeDeb(path, deb.name, deb.entries, deb.conffiles ?? []);
    md5s.push(await tree.addDeb(path, deb.name, await readDebControl(path)));
  }
  return { tree, dir, md5s };
}

const sampleDebs = (): { name: string; entries: DebEntry[]; conffiles?: string[] }[] => [
  {
    name: 'zeta',
    entries: [
      { name: './', type: 'directory' },
      { name: './usr/', type: 'directory' },
      { name: './usr/bin/', type: 'directory' },
      { name: './usr/bin/zeta', content: 'zeta program', mode: 0o755 },
      { name: './usr/bin/zeta-again', type: 'link', linkname: './usr/bin/zeta' },
      { name: './etc/', type: 'directory' },
      { name: './etc/zeta.conf', content: 'answer = 42\n' },
    ],
    conffiles: ['/etc/zeta.conf'],
  },
  {
    name: 'alpha',
    entries: [
      { name: './', type: 'directory' },
      { name: './bin/', type: 'directory' },
      { name: './bin/alpha', content: 'alpha program', mode: 0o755 },
      { name: './bin/a', type: 'symlink', linkname: 'alpha' },
      { name: './tmp/', type: 'directory', mode: 0o1777 },
    ],
  },
];

test('the gzip has a fixed header (no name, mtime 0, OS 255) and decompresses to its input', async (t) => {
  const input = Buffer.from('brl '.repeat(10_000));
  const compressed = await gzipOf(input);
  t.deepEqual(compressed.subarray(0, 10), gzipHeader);
  t.is(compressed.readUInt32LE(4), 0);
  t.is(compressed[9], 0xff);
  t.deepEqual(gunzipSync(compressed), input);
  t.deepEqual(await gzipOf(input), compressed);
  // An empty input is still one valid member.
  t.deepEqual(gunzipSync(await gzipOf(Buffer.alloc(0))), Buffer.alloc(0));
});

test('a layer is the same bytes whatever order the debs and entries came in, sorted, with fixed times and numeric owners', async (t) => {
  const first = await treeFromDebs(sampleDebs());
  first.tree.addUsrMergeLinks();
  const second = await treeFromDebs(sampleDebs().reverse().map((deb) => ({ ...deb, entries: [...deb.entries].reverse().sort((a, b) => (a.type === 'link' ? 1 : b.type === 'link' ? -1 : 0)) })));
  second.tree.addUsrMergeLinks();
  const one = await writeLayer(first.tree, join(first.dir, 'layer.tar.gz'), 1_700_000_000);
  const two = await writeLayer(second.tree, join(second.dir, 'layer.tar.gz'), 1_700_000_000);
  t.is(one.digest, two.digest);
  t.is(one.diffId, two.diffId);
  t.deepEqual(await readFile(join(first.dir, 'layer.tar.gz')), await readFile(join(second.dir, 'layer.tar.gz')));
  t.is(one.digest, `sha256:${createHash('sha256').update(await readFile(join(first.dir, 'layer.tar.gz'))).digest('hex')}`);
  t.is(one.diffId, `sha256:${createHash('sha256').update(gunzipSync(await readFile(join(first.dir, 'layer.tar.gz')))).digest('hex')}`);

  const entries = await listLayer(join(first.dir, 'layer.tar.gz'));
  t.deepEqual(entries.map((entry) => entry.name), [
    'bin', 'etc/', 'etc/zeta.conf', 'lib', 'lib64', 'sbin', 'tmp/', 'usr/', 'usr/bin/', 'usr/bin/a', 'usr/bin/alpha', 'usr/bin/zeta', 'usr/bin/zeta-again',
  ]);
  t.true(entries.every((entry) => entry.mtime === 1_700_000_000 && entry.uid === 0 && entry.gid === 0 && entry.uname === ''));
  const byName = new Map(entries.map((entry) => [entry.name, entry]));
  t.is(byName.get('bin')?.linkname, 'usr/bin');
  t.is(byName.get('tmp/')?.mode, 0o1777);
  t.is(byName.get('usr/bin/a')?.linkname, 'alpha');
  t.is(byName.get('usr/bin/alpha')?.mode, 0o755);
  // The hard link keeps its shape: bytes once, under the first name in layer order.
  t.is(byName.get('usr/bin/zeta')?.content, 'zeta program');
  t.is(byName.get('usr/bin/zeta-again')?.type, 'link');
  t.is(byName.get('usr/bin/zeta-again')?.linkname, 'usr/bin/zeta');

  // A different time gives a different layer: the epoch is really in the bytes.
  const other = await writeLayer(first.tree, join(first.dir, 'other.tar.gz'), 1_700_000_001);
  t.not(other.digest, one.digest);
});

test('conffiles are hashed as shipped and recorded in the dpkg status file', async (t) => {
  const { md5s } = await treeFromDebs(sampleDebs());
  const md5 = createHash('md5').update('answer = 42\n').digest('hex');
  t.is(md5s[0]?.get('/etc/zeta.conf'), md5);
  const status = renderDpkgStatus([
    { control: { stanza: 'Package: zeta\nVersion: 1.0\nDescription: z\n more', conffiles: ['/etc/zeta.conf'] }, conffileMd5: md5s[0] ?? new Map() },
    { control: { stanza: 'Package: alpha\nVersion: 1.0\nDescription: a', conffiles: [] }, conffileMd5: new Map() },
  ]);
  t.is(status, `Package: alpha\nStatus: install ok installed\nVersion: 1.0\nDescription: a\n\nPackage: zeta\nStatus: install ok installed\nVersion: 1.0\nConffiles:\n /etc/zeta.conf ${md5}\nDescription: z\n more\n`);
});

for (const [name, why] of [
  ['./../escape', /\.\. segment/],
  ['./usr/../../etc/shadow', /\.\. segment/],
  ['/etc/passwd', /absolute path/],
  ['./etc/.wh.passwd', /whiteout/],
] as const) {
  test(`refuses a deb entry "${name}"`, async (t) => {
    const error = await t.throwsAsync(treeFromDebs([{ name: 'evil', entries: [{ name: './', type: 'directory' }, { name, content: 'x' }] }]));
    t.regex(error?.message ?? '', why);
    t.regex(error?.message ?? '', /evil: entry/);
    t.is((error as { code?: string } | undefined)?.code, 'UNSAFE_DEB_ENTRY');
  });
}

test('refuses a hard link that climbs out of the root', async (t) => {
  const link = await t.throwsAsync(treeFromDebs([{ name: 'evil', entries: [{ name: './x', type: 'link', linkname: '../../etc/shadow' }] }]));
  t.regex(link?.message ?? '', /\.\. segment/);
});

test('two debs shipping one path with different bytes is an error naming both', async (t) => {
  const error = await t.throwsAsync(treeFromDebs([
    { name: 'one', entries: [{ name: './bin/tool', content: 'one' }] },
    { name: 'two', entries: [{ name: './usr/bin/tool', content: 'two' }] },
  ]));
  t.regex(error?.message ?? '', /\/usr\/bin\/tool is shipped by both one .* and two/);
  // The same bytes twice (an alias after the /usr merge) are fine.
  await t.notThrowsAsync(treeFromDebs([
    { name: 'one', entries: [{ name: './bin/tool', content: 'same' }] },
    { name: 'two', entries: [{ name: './usr/bin/tool', content: 'same' }] },
  ]));
});

test('entry paths: normalized, merged into /usr, dropped by pattern', (t) => {
  t.is(normalizeEntryPath('./usr/bin/x', 'd'), 'usr/bin/x');
  t.is(normalizeEntryPath('./', 'd'), '');
  t.is(normalizeEntryPath('usr//lib/./x/', 'd'), 'usr/lib/x');
  t.is(mergeUsr('lib/x86_64-linux-gnu/libc.so.6'), 'usr/lib/x86_64-linux-gnu/libc.so.6');
  t.is(mergeUsr('lib64'), 'usr/lib64');
  t.is(mergeUsr('library/x'), 'library/x');
  t.true(matchesDropPattern('/usr/share/man', 'usr/share/man/man1/ls.1.gz'));
  t.true(matchesDropPattern('/usr/share/doc/*/changelog*', 'usr/share/doc/bash/changelog.Debian.gz'));
  t.false(matchesDropPattern('/usr/share/doc/*/changelog*', 'usr/share/doc/bash/copyright'));
  t.false(matchesDropPattern('/usr/share/man', 'usr/share/manual'));
  t.false(matchesDropPattern('/usr/share/man', 'usr/share'));
});

test('registry references: HOST:PORT/REPO[:TAG], digests and bad names refused', (t) => {
  t.deepEqual(parseRegistryTarget('127.0.0.1:5000/brl/admin'), { registry: '127.0.0.1:5000', repository: 'brl/admin' });
  t.deepEqual(parseRegistryTarget('localhost:5000/brl/admin:v0.1.0'), { registry: 'localhost:5000', repository: 'brl/admin', tag: 'v0.1.0' });
  t.deepEqual(parseRegistryTarget('registry.example.com/a'), { registry: 'registry.example.com', repository: 'a' });
  t.throws(() => parseRegistryTarget('admin'), { message: /no registry host/ });
  t.throws(() => parseRegistryTarget('brl/admin'), { message: /"brl", which is not a registry host/ });
  t.throws(() => parseRegistryTarget('h:5000/Admin'), { message: /invalid repository/ });
  t.throws(() => parseRegistryTarget(`h:5000/a@sha256:${'0'.repeat(64)}`), { message: /names a digest/ });
  t.is(registryBaseUrl('127.0.0.1:5000'), 'http://127.0.0.1:5000');
  t.is(registryBaseUrl('localhost:5000'), 'http://localhost:5000');
  t.is(registryBaseUrl('registry.example.com'), 'https://registry.example.com');
  t.is(registryBaseUrl('registry.example.com:5000', true), 'http://registry.example.com:5000');
});

test('the layer tar is read back by GNU tar as written', async (t) => {
  const { tree, dir } = await treeFromDebs(sampleDebs());
  await writeLayer(tree, join(dir, 'layer.tar.gz'), 1_700_000_000);
  const { stdout } = await run('tar', ['-tvzf', join(dir, 'layer.tar.gz'), '--numeric-owner']);
  t.regex(stdout, /hrwxr-xr-x 0\/0 +0 2023-11-14 \d\d:\d\d usr\/bin\/zeta-again link to usr\/bin\/zeta/);
  t.regex(stdout, /drwxrwxrwt 0\/0 +0 2023-11-14 \d\d:\d\d tmp\//);
});

test.serial('a layer is streamed: memory stays far below the size of a 512 MiB file in it', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'brl-oci-big-'));
  await mkdir(join(dir, 'staging'));
  const tree = new RootTree(join(dir, 'staging'));
  const sizeBytes = 512 * 1024 * 1024;
  const chunk = Buffer.alloc(1024 * 1024, 0x61);
  async function* bigFile(): AsyncGenerator<Buffer> {
    for (let written = 0; written < sizeBytes; written += chunk.length) yield chunk;
  }
  const baseline = process.memoryUsage().rss;
  let peak = baseline;
  const sampler = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, 20);
  try {
    await tree.addFile('/big', 0o644, bigFile());
    const layer = await writeLayer(tree, join(dir, 'layer.tar.gz'), 0);
    t.true(layer.uncompressedSize > sizeBytes);
  } finally {
    clearInterval(sampler);
  }
  t.log(`peak RSS grew by ${((peak - baseline) / 1024 / 1024).toFixed(1)} MiB for a ${sizeBytes / 1024 / 1024} MiB file`);
  // Measured: +28 MiB for 64 MiB, +55 MiB for 512 MiB, +44 MiB for 1.5 GiB (garbage not yet collected, not the file).
  t.true(peak - baseline < sizeBytes / 4);
});
