// Semantic versions as manifest.json and os-release carry them: parse, compare, print.
import { BrlError, ExitCode } from '../core/errors.ts';

export interface Version {
  major: number;
  minor: number;
  patch: number;
  /** Dot-separated pre-release identifiers; empty for a release. */
  prerelease: readonly string[];
  /** Build metadata; ignored when comparing, kept when printing. */
  build: readonly string[];
}

const identifier = '(?:0|[1-9]\\d*|\\d*[A-Za-z-][0-9A-Za-z-]*)';
const semverPattern = new RegExp(
  `^(0|[1-9]\\d*)\\.(0|[1-9]\\d*)\\.(0|[1-9]\\d*)(?:-(${identifier}(?:\\.${identifier})*))?(?:\\+([0-9A-Za-z-]+(?:\\.[0-9A-Za-z-]+)*))?$`,
);

/** Parses a plain semver (no leading `v`); undefined when it is not one. */
export function tryParseVersion(text: string): Version | undefined {
  const match = semverPattern.exec(text);
  if (!match) return undefined;
  const [, major, minor, patch, prerelease, build] = match;
  const parts = [Number(major), Number(minor), Number(patch)];
  if (parts.some((part) => !Number.isSafeInteger(part))) return undefined;
  return {
    major: parts[0]!,
    minor: parts[1]!,
    patch: parts[2]!,
    prerelease: prerelease === undefined ? [] : prerelease.split('.'),
    build: build === undefined ? [] : build.split('.'),
  };
}

/** Parses a plain semver or throws a BrlError naming `what` (e.g. "--image", "manifest.json updates[2].version"). */
export function parseVersion(text: string, what: string): Version {
  const version = tryParseVersion(text);
  if (!version) {
    throw new BrlError(`${what}: ${JSON.stringify(text)} is not a semantic version`, {
      hint: 'write it as MAJOR.MINOR.PATCH, e.g. 1.26.1 (no leading "v")',
      exitCode: ExitCode.badInput,
      code: 'BAD_VERSION',
    });
  }
  return version;
}

export function formatVersion(version: Version): string {
  const core = `${version.major}.${version.minor}.${version.patch}`;
  const pre = version.prerelease.length > 0 ? `-${version.prerelease.join('.')}` : '';
  const build = version.build.length > 0 ? `+${version.build.join('.')}` : '';
  return `${core}${pre}${build}`;
}

function compareIdentifiers(left: string, right: string): number {
  const leftNumeric = /^\d+$/.test(left);
  const rightNumeric = /^\d+$/.test(right);
  if (leftNumeric && rightNumeric) return Math.sign(Number(left) - Number(right));
  if (leftNumeric) return -1;
  if (rightNumeric) return 1;
  return left < right ? -1 : left > right ? 1 : 0;
}

/** Semver precedence: negative, zero or positive. Build metadata does not count. */
export function compareVersions(left: Version, right: Version): number {
  for (const key of ['major', 'minor', 'patch'] as const) {
    if (left[key] !== right[key]) return Math.sign(left[key] - right[key]);
  }
  if (left.prerelease.length === 0 || right.prerelease.length === 0) {
    return Math.sign(right.prerelease.length - left.prerelease.length);
  }
  const length = Math.max(left.prerelease.length, right.prerelease.length);
  for (let index = 0; index < length; index += 1) {
    const a = left.prerelease[index];
    const b = right.prerelease[index];
    if (a === undefined) return -1;
    if (b === undefined) return 1;
    const order = compareIdentifiers(a, b);
    if (order !== 0) return order;
  }
  return 0;
}

export function maxVersion(left: Version, right: Version): Version {
  return compareVersions(left, right) >= 0 ? left : right;
}
