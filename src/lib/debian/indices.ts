// The machine's apt package indices: which ones apt has (apt-get indextargets) and what they hold.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { BrlError, ExitCode } from '../core/errors.ts';
import { missingAptTool } from './apt-tool.ts';
import { parseRelations, parseStanzas, type Alternatives, type Stanza } from './control.ts';

const run = promisify(execFile);

/** One `Packages` index as apt describes it. */
export interface PackageIndex {
  /** apt's local copy (often compressed; read with apt-helper). */
  file: string;
  /** e.g. `http://deb.debian.org/debian/`: `Filename:` fields are relative to it. */
  repoUri: string;
  codename: string;
  suite: string;
  component: string;
  architecture: string;
}

/** One binary package version from an index. */
export interface BinaryPackage {
  name: string;
  version: string;
  architecture: string;
  source: string;
  multiArch?: string;
  essential: boolean;
  depends: Alternatives[];
  preDepends: Alternatives[];
  provides: Alternatives[];
  /** Download URL: the index's repository URI and the stanza's `Filename:`. */
  url: string;
  size: number;
  sha256: string;
  index: PackageIndex;
}

export async function listPackageIndices(architecture: string): Promise<PackageIndex[]> {
  let stdout: string;
  try {
    ({ stdout } = await run('apt-get', ['indextargets', 'Created-By: Packages'], { maxBuffer: 16 * 1024 * 1024 }));
  } catch (error) {
    throw missingAptTool(error, 'apt-get', 'read Debian package metadata') ?? error;
  }
  const indices = parseStanzas(stdout)
    .filter((stanza) => stanza.get('Architecture') === architecture)
    .map((stanza) => ({
      file: field(stanza, 'Filename'),
      repoUri: field(stanza, 'Repo-URI'),
      codename: field(stanza, 'Codename'),
      suite: field(stanza, 'Suite'),
      component: field(stanza, 'Component'),
      architecture,
    }));
  if (indices.length === 0) {
    throw new BrlError(`apt has no package index for ${architecture}`, {
      hint: `run \`dpkg --print-foreign-architectures\`: unless ${architecture} is the machine's own architecture or listed there, enable it with \`dpkg --add-architecture ${architecture}\` (as root; \`npm run host-tools\` does it for the arches brl builds); then run \`apt-get update\`, and check /etc/apt/sources.list* lists the Debian release to lock against`,
      exitCode: ExitCode.notFound,
      code: 'NO_APT_INDEX',
    });
  }
  return indices;
}

export async function readPackageIndex(index: PackageIndex): Promise<BinaryPackage[]> {
  let stdout: string;
  try {
    // apt keeps indices compressed (lz4 on Debian 12); apt-helper reads every format apt writes.
    ({ stdout } = await run('/usr/lib/apt/apt-helper', ['cat-file', index.file], { maxBuffer: 1024 * 1024 * 1024 }));
  } catch (error) {
    throw new BrlError(`cannot read apt index ${index.file}: ${(error as { stderr?: string }).stderr?.trim() || String(error)}`, {
      hint: 'run `apt-get update` (as root)',
      exitCode: ExitCode.notFound,
      code: 'NO_APT_INDEX',
    });
  }
  return parseStanzas(stdout).map((stanza) => toBinaryPackage(stanza, index));
}

function toBinaryPackage(stanza: Stanza, index: PackageIndex): BinaryPackage {
  const name = field(stanza, 'Package');
  const version = field(stanza, 'Version');
  const where = `${index.file}: ${name} ${version}`;
  // `Source: name (version)` when the source version differs; absent when the names match.
  const source = (stanza.get('Source') ?? name).split(' ')[0] ?? name;
  const multiArch = stanza.get('Multi-Arch');
  return {
    name,
    version,
    architecture: field(stanza, 'Architecture'),
    source,
    ...(multiArch === undefined ? {} : { multiArch }),
    essential: stanza.get('Essential') === 'yes',
    depends: parseRelations(stanza.get('Depends'), `${where} Depends`),
    preDepends: parseRelations(stanza.get('Pre-Depends'), `${where} Pre-Depends`),
    provides: parseRelations(stanza.get('Provides'), `${where} Provides`),
    url: new URL(field(stanza, 'Filename'), index.repoUri).href,
    size: Number(field(stanza, 'Size')),
    sha256: field(stanza, 'SHA256'),
    index,
  };
}

function field(stanza: Stanza, name: string): string {
  const value = stanza.get(name);
  if (value === undefined) throw new Error(`apt metadata stanza without ${name}: ${JSON.stringify(Object.fromEntries(stanza))}`);
  return value;
}
