// Resolves `deb:<name>=<version>` to a download URL through the machine's configured apt sources.
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { BrlError, ExitCode } from '../core/errors.ts';
import { missingAptTool } from '../debian/apt-tool.ts';
import { SourceError } from './download.ts';

const run = promisify(execFile);

export interface DebPin {
  name: string;
  version: string;
}

export interface DebContext {
  packageName: string;
  manifestPath: string;
  /** The local file name (`path`), which often carries the version too. */
  fileName: string;
}

export function parseDebSource(source: string): DebPin {
  const [name = '', version = ''] = source.slice('deb:'.length).split('=');
  return { name, version };
}

/**
 * Asks `apt-get download --print-uris` where apt would fetch the pinned version from. A version the
 * sources no longer serve (Debian drops superseded point-release versions) is a BrlError whose hint
 * is the current candidate from `apt-cache policy` and how to move the pin to it.
 */
export async function resolveDebUrl(source: string, context: DebContext): Promise<string> {
  const { name, version } = parseDebSource(source);
  // apt-get download writes nothing with --print-uris, but it needs a writable working directory.
  const workDir = await mkdtemp(join(tmpdir(), 'brl-apt-'));
  let stdout: string;
  try {
    ({ stdout } = await run('apt-get', ['download', '--print-uris', `${name}=${version}`], { cwd: workDir, timeout: 120_000 }));
  } catch (error) {
    const missing = missingAptTool(error, 'apt-get', `resolve ${source}`);
    if (missing !== undefined) throw missing;
    const stderr = (error as { stderr?: string }).stderr ?? '';
    if (/Version '.*' for '.*' was not found/.test(stderr)) {
      throw await versionGoneError(source, name, version, context);
    }
    if (/Unable to locate package/.test(stderr)) {
      throw new BrlError(`${context.manifestPath}: ${source} (package ${context.packageName}): the configured apt sources do not know package "${name}"`, {
        hint: 'run `apt-get update` (as root), or check the package name and /etc/apt/sources.list*',
        exitCode: ExitCode.notFound,
        code: 'DEB_PACKAGE_UNKNOWN',
      });
    }
    throw new SourceError(`apt-get download --print-uris ${name}=${version} failed: ${stderr.trim().split('\n')[0] ?? String(error)}`);
  } finally {
    await rm(workDir, { recursive: true, force: true });
  }
  // Each line: 'URI' file-name size checksum
  const uri = /^'([^']+)'\s/m.exec(stdout)?.[1];
  if (uri === undefined) throw new SourceError(`apt-get printed no URI for ${name}=${version}`);
  if (!/^(https?|file):/.test(uri)) throw new SourceError(`apt serves ${name}=${version} from ${uri}, whose scheme brl cannot download`);
  return uri;
}

async function versionGoneError(
  source: string,
  name: string,
  version: string,
  context: DebContext,
): Promise<BrlError> {
  let policy = '';
  try {
    ({ stdout: policy } = await run('apt-cache', ['policy', name], { timeout: 60_000 }));
  } catch {
    // The hint below still says what to run.
  }
  const candidate = /^\s*Candidate:\s*(\S+)/m.exec(policy)?.[1];
  const hasCandidate = candidate !== undefined && candidate !== '(none)';
  // Debian file names drop the epoch, so that is the form a `path` would carry.
  const fileVersion = (text: string): string => text.replace(/^\d+:/, '');
  const renamedFile = hasCandidate && context.fileName.includes(fileVersion(version))
    ? context.fileName.replace(fileVersion(version), fileVersion(candidate))
    : undefined;
  const steps = hasCandidate
    ? [
        `the apt sources now serve ${name} ${candidate}. To move the pin, in ${context.manifestPath} set`,
        `  url = "deb:${name}=${candidate}"`,
        ...(renamedFile === undefined ? [] : [`  path = "${renamedFile}"`]),
        `and set sha512 to the output of: apt-get download ${name}=${candidate} && sha512sum ${name}_*.deb`,
      ]
    : [`the apt sources serve no version of ${name}; run \`apt-get update\` and \`apt-cache policy ${name}\``];
  return new BrlError(
    `${source} (package ${context.packageName}): version ${version} of ${name} is no longer served by the configured apt sources`,
    {
      hint: [...steps, '', `apt-cache policy ${name}:`, policy.trimEnd() || '  (no output)'].join('\n'),
      exitCode: ExitCode.notFound,
      code: 'DEB_VERSION_GONE',
    },
  );
}
