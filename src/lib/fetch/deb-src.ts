// Resolves `deb-src:<name>=<version>` files through a private apt configuration that mirrors the machine's `deb` sources as `deb-src`.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { BrlError, ExitCode, errnoCode } from '../core/errors.ts';
import { missingAptTool } from '../debian/apt-tool.ts';
import { writeFileAtomic } from '../core/fs.ts';
import { SourceError } from './download.ts';

const run = promisify(execFile);

export interface DebSrcContext {
  packageName: string;
  manifestPath: string;
  /** The `path` of the external file: one file of the source package (`.dsc`, orig tarball, Debian tarball). */
  fileName: string;
  /** The fetch cache directory; the private apt lists live in `<cacheDir>/.apt-sources/`. */
  cacheDir: string;
}

export function parseDebSrcSource(source: string): { name: string; version: string } {
  const [name = '', version = ''] = source.slice('deb-src:'.length).split('=');
  return { name, version };
}

interface AptSources {
  /** The generated `*.sources`/`*.list` files by name, in the order apt would read them. */
  files: Map<string, string>;
  /** Directory holding the private configuration and lists (named by the generated content). */
  dir: string;
}

/** One `apt-get update` per generated configuration and one `--print-uris` per pin, shared by concurrent callers. */
const updates = new Map<string, Promise<void>>();
const uriLists = new Map<string, Promise<Map<string, string>>>();

/**
 * The URL apt would download `context.fileName` of source package `<name>=<version>` from. The
 * machine's sources (as `apt-config` locates them, so `APT_CONFIG` is honoured) are copied with
 * `deb` turned into `deb-src`; no system file is written.
 */
export async function resolveDebSrcUrl(source: string, context: DebSrcContext): Promise<string> {
  const { name, version } = parseDebSrcSource(source);
  const sources = await mirroredSources(context.cacheDir);
  if (sources.files.size === 0) {
    throw new BrlError(`${context.manifestPath}: ${source} (package ${context.packageName}): the machine has no apt "deb" sources to look for source packages in`, {
      hint: 'add a Debian or Ubuntu archive to /etc/apt/sources.list.d/ (brl reads its "deb" entries as "deb-src")',
      exitCode: ExitCode.notFound,
      code: 'DEB_SRC_PACKAGE_UNKNOWN',
    });
  }
  const key = `${sources.dir}|${name}=${version}`;
  let uris = uriLists.get(key);
  if (uris === undefined) {
    uris = printUris(sources, source, name, version, context);
    uriLists.set(key, uris);
    uris.catch(() => uriLists.delete(key));
  }
  const byFile = await uris;
  const uri = byFile.get(context.fileName);
  if (uri === undefined) {
    throw new BrlError(`${context.manifestPath}: ${source} (package ${context.packageName}) has no file "${context.fileName}"`, {
      hint: `the source package's files are: ${[...byFile.keys()].join(', ')}; set path to one of them`,
      exitCode: ExitCode.notFound,
      code: 'DEB_SRC_FILE_UNKNOWN',
    });
  }
  if (!/^(https?|file):/.test(uri)) throw new SourceError(`apt serves ${context.fileName} from ${uri}, whose scheme brl cannot download`);
  return uri;
}

function aptOptions(sources: AptSources): string[] {
  return [
    '-o', `Dir::Etc::SourceList=${join(sources.dir, 'empty.list')}`,
    '-o', `Dir::Etc::SourceParts=${join(sources.dir, 'sources.list.d')}`,
    '-o', `Dir::State::Lists=${join(sources.dir, 'lists')}`,
    '-o', `Dir::Cache=${join(sources.dir, 'cache')}`,
    // The lists belong to whoever runs brl; apt's download user may not be able to write them.
    '-o', 'APT::Sandbox::User=root',
  ];
}

async function printUris(sources: AptSources, source: string, name: string, version: string, context: DebSrcContext): Promise<Map<string, string>> {
  await updateLists(sources);
  let stdout: string;
  try {
    ({ stdout } = await run('apt-get', [...aptOptions(sources), 'source', '--print-uris', '--only-source', `${name}=${version}`], {
      cwd: sources.dir,
      timeout: 120_000,
    }));
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr ?? '';
    // apt says both "Can not find version" and "Unable to find a source package" for a gone version
    // and for an unknown package alike; the versions it knows tell them apart.
    if (/Can not find version|Unable to find a source package/i.test(stderr)) throw await notServedError(sources, source, name, version, context);
    throw new SourceError(`apt-get source --print-uris ${name}=${version} failed: ${stderr.trim().split('\n').at(-1) ?? String(error)}`);
  }
  // Each line: 'URI' file-name size checksum
  const byFile = new Map<string, string>();
  for (const match of stdout.matchAll(/^'([^']+)'\s+(\S+)\s/gm)) byFile.set(match[2]!, match[1]!);
  if (byFile.size === 0) throw new SourceError(`apt-get printed no URIs for source package ${name}=${version}`);
  return byFile;
}

function updateLists(sources: AptSources): Promise<void> {
  let update = updates.get(sources.dir);
  if (update === undefined) {
    update = (async () => {
      for (const sub of ['sources.list.d', 'lists/partial', 'cache/archives/partial']) await mkdir(join(sources.dir, sub), { recursive: true });
      await writeFileAtomic(join(sources.dir, 'empty.list'), '');
      for (const [file, text] of sources.files) await writeFileAtomic(join(sources.dir, 'sources.list.d', file), text);
      try {
        await run('apt-get', [...aptOptions(sources), '-q', 'update'], { cwd: sources.dir, timeout: 600_000 });
      } catch (error) {
        if (errnoCode(error) === 'ENOENT') {
          throw new BrlError('cannot resolve deb-src: sources: apt-get is not installed', {
            hint: 'deb-src: sources are found through the machine\'s apt sources, which needs a Debian or Ubuntu host',
            exitCode: ExitCode.missingTool,
            code: 'MISSING_HOST_TOOL',
          });
        }
        const stderr = (error as { stderr?: string }).stderr ?? '';
        throw new SourceError(`apt-get update of the source indexes failed: ${stderr.trim().split('\n').at(-1) ?? String(error)}`);
      }
    })();
    updates.set(sources.dir, update);
    update.catch(() => updates.delete(sources.dir));
  }
  return update;
}

/** The machine's apt sources with every `deb` entry turned into `deb-src`. */
async function mirroredSources(cacheDir: string): Promise<AptSources> {
  let located: string;
  try {
    ({ stdout: located } = await run('apt-config', ['shell', 'LIST', 'Dir::Etc::SourceList/f', 'PARTS', 'Dir::Etc::SourceParts/d']));
  } catch (error) {
    throw missingAptTool(error, 'apt-config', 'resolve deb-src: sources') ?? error;
  }
  const value = (name: string): string | undefined => new RegExp(`^${name}='([^']*)'`, 'm').exec(located)?.[1];
  const inputs: Array<{ name: string; path: string }> = [];
  const list = value('LIST');
  if (list !== undefined) inputs.push({ name: 'sources.list', path: list });
  const parts = value('PARTS');
  if (parts !== undefined) {
    const names = await readdir(parts).catch(() => [] as string[]);
    for (const name of names.filter((entry) => /^[\w.-]+\.(list|sources)$/.test(entry)).sort()) inputs.push({ name, path: join(parts, name) });
  }
  const files = new Map<string, string>();
  for (const input of inputs) {
    const text = await readFile(input.path, 'utf8').catch(() => undefined);
    if (text === undefined) continue;
    const mirrored = input.name.endsWith('.sources') ? debSrcStanzas(text) : debSrcLines(text);
    if (mirrored !== '') files.set(input.name.endsWith('.sources') ? input.name : input.name.replace(/(\.list)?$/, '.list'), mirrored);
  }
  const digest = createHash('sha256').update(JSON.stringify([...files])).digest('hex').slice(0, 16);
  return { files, dir: join(cacheDir, '.apt-sources', digest) };
}

/** One-line format: each `deb …` line becomes `deb-src …`. */
export function debSrcLines(text: string): string {
  const lines = text.split('\n').filter((line) => /^\s*deb\s/.test(line)).map((line) => line.replace(/^\s*deb\s/, 'deb-src '));
  return lines.length === 0 ? '' : `${lines.join('\n')}\n`;
}

/** deb822 format: stanzas whose Types include `deb` get `Types: deb-src`; disabled stanzas are left out. */
export function debSrcStanzas(text: string): string {
  const stanzas = text.split(/\n\s*\n/).map((stanza) => stanza.split('\n').filter((line) => !line.startsWith('#')).join('\n').trim());
  const kept = stanzas.filter((stanza) => {
    const types = /^Types:\s*(.*)$/im.exec(stanza)?.[1]?.split(/\s+/) ?? [];
    return types.includes('deb') && !/^Enabled:\s*no\s*$/im.test(stanza);
  });
  return kept.map((stanza) => `${stanza.replace(/^Types:.*$/im, 'Types: deb-src')}\n`).join('\n');
}

async function notServedError(sources: AptSources, source: string, name: string, version: string, context: DebSrcContext): Promise<BrlError> {
  let showsrc = '';
  try {
    ({ stdout: showsrc } = await run('apt-cache', [...aptOptions(sources), 'showsrc', '--only-source', name], { timeout: 60_000 }));
  } catch {
    // No versions known: reported as an unknown package below.
  }
  const versions = [...new Set([...showsrc.matchAll(/^Version:\s*(\S+)/gm)].map((match) => match[1]!))];
  if (versions.length === 0) {
    return new BrlError(`${context.manifestPath}: ${source} (package ${context.packageName}): the apt sources have no source package "${name}"`, {
      hint: 'check the source package name (`apt-cache showsrc <binary package>` names it under Package:) and run `apt-get update`',
      exitCode: ExitCode.notFound,
      code: 'DEB_SRC_PACKAGE_UNKNOWN',
    });
  }
  return new BrlError(`${source} (package ${context.packageName}): version ${version} of source package ${name} is no longer served by the apt sources`, {
    hint: [
      `the apt sources now serve source package ${name} ${versions.join(', ')}. To move the pin, in ${context.manifestPath} set`,
      `  url = "deb-src:${name}=${versions[0]}"`,
      `on every file of the package, with its path and sha512 from: apt-get source --download-only ${name}=${versions[0]} && sha512sum ${name}_*`,
    ].join('\n'),
    exitCode: ExitCode.notFound,
    code: 'DEB_SRC_VERSION_GONE',
  });
}
