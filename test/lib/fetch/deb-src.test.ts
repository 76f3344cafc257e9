import test from 'ava';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { BrlError } from '../../../src/lib/core/errors.ts';
import { debSrcLines, debSrcStanzas } from '../../../src/lib/fetch/deb-src.ts';
import { fetchExternalFiles, lookasidePath } from '../../../src/lib/fetch/index.ts';
import { FaultServer } from '../../helpers/fault-server.ts';
import { config, content, externalFile, fastNetwork, filesUnder, packageWith, tempDir } from './_fixtures.ts';

const run = promisify(execFile);
const quiet = { progress: 'silent' as const, network: fastNetwork };
let server: FaultServer;
let apt: { configPath: string; dir: string; files: Map<string, Buffer> };
let savedAptConfig: string | undefined;

// One source package, brl-demo 1.0-1, in a flat repository that the "machine" knows only as a `deb` source.
test.before(async () => {
  server = await FaultServer.start();
  const dir = await tempDir('brl-apt-src-');
  const files = new Map<string, Buffer>([
    ['brl-demo_1.0-1.dsc', Buffer.from('Format: 3.0 (quilt)\nSource: brl-demo\nVersion: 1.0-1\n')],
    ['brl-demo_1.0.orig.tar.xz', content(3000)],
    ['brl-demo_1.0-1.debian.tar.xz', content(700)],
  ]);
  const digest = (algorithm: string, body: Buffer): string => createHash(algorithm).update(body).digest('hex');
  const list = (algorithm: string): string => [...files].map(([name, body]) => ` ${digest(algorithm, body)} ${body.length} ${name}`).join('\n');
  const index = [
    'Package: brl-demo', 'Binary: brl-demo', 'Version: 1.0-1', 'Maintainer: brl <brl@example.com>', 'Architecture: all',
    'Format: 3.0 (quilt)', 'Directory: .', `Files:\n${list('md5')}`, `Checksums-Sha256:\n${list('sha256')}`, '',
  ].join('\n');
  server.serve('/debian/./Sources', index);
  for (const [name, body] of files) server.serve(`/debian/${name}`, body);
  for (const sub of ['lists/partial', 'cache/archives/partial', 'parts']) await mkdir(join(dir, sub), { recursive: true });
  await writeFile(join(dir, 'status'), '');
  await writeFile(join(dir, 'sources.list'), `# the machine's binary source\ndeb [trusted=yes] ${server.url('/debian')} ./\n`);
  const configPath = join(dir, 'apt.conf');
  await writeFile(configPath, [
    `Dir::State::Lists "${dir}/lists";`, `Dir::State::status "${dir}/status";`, `Dir::Cache "${dir}/cache";`,
    `Dir::Etc::SourceList "${dir}/sources.list";`, `Dir::Etc::SourceParts "${dir}/parts";`, '',
  ].join('\n'));
  apt = { configPath, dir, files };
  savedAptConfig = process.env.APT_CONFIG;
  process.env.APT_CONFIG = configPath;
});

test.after.always(async () => {
  if (savedAptConfig === undefined) delete process.env.APT_CONFIG;
  else process.env.APT_CONFIG = savedAptConfig;
  await server.close();
});

const pin = (url: string, fileName: string, body = apt.files.get(fileName) ?? Buffer.alloc(0)) => externalFile(url, body, { kind: 'deb-src', fileName });

test.serial('deb-src: fetches every file of a pinned source package through the machine\'s deb sources turned into deb-src', async (t) => {
  const cacheDir = await tempDir();
  const indexRequestsBefore = server.requestsFor('/debian/./Sources').length;
  const pins = [...apt.files.keys()].map((name) => pin('deb-src:brl-demo=1.0-1', name));
  const fetched = await fetchExternalFiles([packageWith('grub', pins)], config(cacheDir), quiet);
  t.deepEqual(fetched.map((file) => file.source), ['upstream', 'upstream', 'upstream']);
  for (const file of pins) t.deepEqual(await readFile(lookasidePath(cacheDir, file)), apt.files.get(file.fileName));
  t.is(fetched[1]?.url, server.url('/debian/./brl-demo_1.0.orig.tar.xz'));
  // The source index went into brl's cache, not into the machine's apt lists.
  t.deepEqual(await filesUnder(join(apt.dir, 'lists')), []);
  const cached = await filesUnder(join(cacheDir, '.apt-sources'));
  t.true(cached.some((path) => path.includes('_Sources')), cached.join(', '));
  // One index download for the three files.
  t.is(server.requestsFor('/debian/./Sources').length - indexRequestsBefore, 1);
});

test.serial('deb-src: a version no longer served names the served one and how to move the pin', async (t) => {
  const error = await t.throwsAsync(
    fetchExternalFiles([packageWith('grub', [pin('deb-src:brl-demo=0.9-1', 'brl-demo_0.9.orig.tar.xz', content(10))])], config(await tempDir()), quiet),
    { instanceOf: BrlError },
  );
  t.is(error?.code, 'DEB_SRC_VERSION_GONE');
  t.regex(error?.message ?? '', /version 0\.9-1 of source package brl-demo is no longer served/);
  t.regex(error?.hint ?? '', /url = "deb-src:brl-demo=1\.0-1"/);
  t.is(error?.exitCode, 4);
});

test.serial('deb-src: an unknown source package and a file the package does not have are errors naming them', async (t) => {
  const unknown = await t.throwsAsync(
    fetchExternalFiles([packageWith('grub', [pin('deb-src:brl-nothing=1.0-1', 'brl-nothing_1.0.orig.tar.xz', content(10))])], config(await tempDir()), quiet),
    { instanceOf: BrlError },
  );
  t.is(unknown?.code, 'DEB_SRC_PACKAGE_UNKNOWN');
  t.regex(unknown?.message ?? '', /no source package "brl-nothing"/);
  const missing = await t.throwsAsync(
    fetchExternalFiles([packageWith('grub', [pin('deb-src:brl-demo=1.0-1', 'brl-demo_1.0.orig.tar.gz', content(10))])], config(await tempDir()), quiet),
    { instanceOf: BrlError },
  );
  t.is(missing?.code, 'DEB_SRC_FILE_UNKNOWN');
  t.regex(missing?.hint ?? '', /brl-demo_1\.0-1\.dsc, brl-demo_1\.0\.orig\.tar\.xz, brl-demo_1\.0-1\.debian\.tar\.xz/);
});

test.serial('deb-src: the mirrored sources are valid for apt in both formats and leave out disabled entries', async (t) => {
  t.is(debSrcLines('# comment\ndeb [signed-by=/k.gpg] http://deb.debian.org/debian bookworm main\ndeb-src http://x/ y z\n'),
    'deb-src [signed-by=/k.gpg] http://deb.debian.org/debian bookworm main\n');
  const stanzas = debSrcStanzas([
    'Types: deb', '# mirror comment', 'URIs: http://deb.debian.org/debian', 'Suites: bookworm', 'Components: main', '',
    'Types: deb', 'URIs: http://off.example/', 'Suites: x', 'Components: main', 'Enabled: no', '',
    'Types: deb-src', 'URIs: http://src-only.example/', 'Suites: y', 'Components: main', '',
  ].join('\n'));
  t.is(stanzas, 'Types: deb-src\nURIs: http://deb.debian.org/debian\nSuites: bookworm\nComponents: main\n');
  const dir = await tempDir('brl-apt-check-');
  await writeFile(join(dir, 'test.sources'), stanzas);
  await writeFile(join(dir, 'none.list'), '');
  const { stdout } = await run('apt-get', ['-o', `Dir::Etc::SourceParts=${dir}`, '-o', `Dir::Etc::SourceList=${join(dir, 'none.list')}`, '-o', `Dir::State::Lists=${dir}`,
    'update', '--print-uris']);
  t.regex(stdout, /^'http:\/\/deb\.debian\.org\/debian\/dists\/bookworm\/main\/source\/Sources\.xz' /m);
  t.notRegex(stdout, /off\.example|src-only\.example/);
});
