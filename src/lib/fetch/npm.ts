// Resolves `npm:<name>@<version>` to its tarball URL through the user's own npm configuration.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { BrlError, ExitCode, errnoCode } from '../core/errors.ts';
import { SourceError } from './download.ts';

const run = promisify(execFile);

/**
 * Asks `npm view` (so .npmrc, `npm_config_registry`, scoped registries and auth all apply) for the
 * tarball URL, and refuses early when the registry's own sha512 integrity disagrees with the pin.
 */
export async function resolveNpmTarball(source: string, expectedSha512: string, context: { manifestPath: string }): Promise<string> {
  const spec = source.slice('npm:'.length);
  const name = spec.slice(0, spec.lastIndexOf('@'));
  let stdout: string;
  try {
    ({ stdout } = await run('npm', ['view', spec, 'dist.tarball', 'dist.integrity', '--json'], {
      timeout: 120_000,
      maxBuffer: 16 * 1024 * 1024,
    }));
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') {
      throw new BrlError(`cannot resolve ${source}: npm is not installed`, {
        hint: 'install Node.js and npm (npm resolves npm: sources through your configured registry)',
        exitCode: ExitCode.missingTool,
        code: 'MISSING_HOST_TOOL',
      });
    }
    const failure = npmFailure(error);
    if (failure.code === 'E404') throw await notPublishedError(source, name, failure.summary, context);
    throw new SourceError(`npm view ${spec} failed: ${failure.summary}`);
  }
  const dist = parseViewOutput(stdout);
  const tarball = dist['dist.tarball'];
  if (typeof tarball !== 'string' || tarball === '') throw new SourceError(`the npm registry has no version ${spec}`);
  const integrity = dist['dist.integrity'];
  if (typeof integrity === 'string') {
    const registrySha512 = integrity
      .split(/\s+/)
      .find((entry) => entry.startsWith('sha512-'))
      ?.slice('sha512-'.length);
    const actual = registrySha512 === undefined ? undefined : Buffer.from(registrySha512, 'base64').toString('hex');
    if (actual !== undefined && actual !== expectedSha512) {
      throw new SourceError(`the npm registry's dist.integrity for ${spec} does not match the pin: expected ${expectedSha512}, got ${actual}`, {
        mismatch: { expected: expectedSha512, actual },
      });
    }
  }
  return tarball;
}

function parseViewOutput(stdout: string): Record<string, unknown> {
  if (stdout.trim() === '') return {};
  const parsed: unknown = JSON.parse(stdout);
  return typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : {};
}

/** npm prints `{"error": {"code", "summary"}}` with --json; otherwise the first stderr line says it. */
function npmFailure(error: unknown): { code: string | undefined; summary: string } {
  const output = error as { stdout?: string; stderr?: string };
  try {
    const parsed = JSON.parse(output.stdout ?? '') as { error?: { code?: string; summary?: string } };
    if (parsed.error?.summary) return { code: parsed.error.code, summary: parsed.error.summary };
  } catch {
    // not JSON: use stderr below
  }
  const line = (output.stderr ?? '').split('\n').find((text) => text.trim() !== '');
  return { code: undefined, summary: line?.replace(/^npm (error|ERR!)\s*/, '') ?? String(error) };
}

/** The pinned package or version is not on the registry: say which versions are, and where the pin is. */
async function notPublishedError(source: string, name: string, summary: string, context: { manifestPath: string }): Promise<BrlError> {
  let latest: string | undefined;
  try {
    const { stdout } = await run('npm', ['view', name, 'dist-tags.latest'], { timeout: 60_000 });
    latest = stdout.trim() || undefined;
  } catch {
    // The package itself is unknown: there is no latest version to offer.
  }
  const steps =
    latest === undefined
      ? [`the configured npm registry has no package "${name}"; check the name, or the registry in \`npm config get registry\``]
      : [
          `the registry's latest ${name} is ${latest} (\`npm view ${name} versions\` lists all). To move the pin, in ${context.manifestPath} set`,
          `  url = "npm:${name}@${latest}"`,
          `and set sha512 to the hex of its dist.integrity: npm view ${name}@${latest} dist.integrity`,
        ];
  return new BrlError(`${source}: not on the configured npm registry (${summary})`, {
    hint: steps.join('\n'),
    exitCode: ExitCode.notFound,
    code: latest === undefined ? 'NPM_PACKAGE_UNKNOWN' : 'NPM_VERSION_UNKNOWN',
  });
}
