// RPM version ordering (rpmvercmp, with `~` and `^`) and EVR range matching for dependencies.
import { SenseFlags } from '../packages/rpm.ts';

/** Compares two version or release strings as rpm does: <0, 0, >0. */
export function rpmVersionCompare(a: string, b: string): number {
  if (a === b) return 0;
  let i = 0;
  let j = 0;
  for (;;) {
    while (i < a.length && !isAlnum(a[i] as string) && a[i] !== '~' && a[i] !== '^') i++;
    while (j < b.length && !isAlnum(b[j] as string) && b[j] !== '~' && b[j] !== '^') j++;
    // A tilde sorts before anything, even the end of the string.
    if (a[i] === '~' || b[j] === '~') {
      if (a[i] !== '~') return 1;
      if (b[j] !== '~') return -1;
      i++; j++;
      continue;
    }
    // A caret sorts after the end of the string but before anything else.
    if (a[i] === '^' || b[j] === '^') {
      if (i >= a.length) return -1;
      if (j >= b.length) return 1;
      if (a[i] !== '^') return 1;
      if (b[j] !== '^') return -1;
      i++; j++;
      continue;
    }
    if (i >= a.length || j >= b.length) break;
    const numeric = isDigit(a[i] as string);
    const take = (s: string, start: number): number => {
      let end = start;
      while (end < s.length && (numeric ? isDigit(s[end] as string) : isAlpha(s[end] as string))) end++;
      return end;
    };
    const endA = take(a, i);
    const endB = take(b, j);
    if (endB === j) return numeric ? 1 : -1;
    let segA = a.slice(i, endA);
    let segB = b.slice(j, endB);
    if (numeric) {
      segA = segA.replace(/^0+/, '');
      segB = segB.replace(/^0+/, '');
      if (segA.length !== segB.length) return segA.length > segB.length ? 1 : -1;
    }
    if (segA !== segB) return segA < segB ? -1 : 1;
    i = endA;
    j = endB;
  }
  if (i >= a.length && j >= b.length) return 0;
  return i >= a.length ? -1 : 1;
}

export interface Evr {
  epoch: number;
  version: string;
  release: string | undefined;
}

export function parseEvr(text: string): Evr {
  const colon = text.indexOf(':');
  const epoch = colon > 0 && /^\d+$/.test(text.slice(0, colon)) ? Number(text.slice(0, colon)) : 0;
  const rest = colon > 0 ? text.slice(colon + 1) : text;
  const dash = rest.lastIndexOf('-');
  return dash < 0 ? { epoch, version: rest, release: undefined } : { epoch, version: rest.slice(0, dash), release: rest.slice(dash + 1) };
}

/** Release is compared only when both sides carry one, as rpm does. */
export function compareEvr(a: Evr, b: Evr): number {
  if (a.epoch !== b.epoch) return a.epoch < b.epoch ? -1 : 1;
  const byVersion = rpmVersionCompare(a.version, b.version);
  if (byVersion !== 0 || a.release === undefined || b.release === undefined) return byVersion;
  return rpmVersionCompare(a.release, b.release);
}

/** Does a provide of `provided` (flags, version) satisfy a requirement (flags, version)? */
export function rangesOverlap(requireFlags: number, requireVersion: string, provideFlags: number, provideVersion: string): boolean {
  const senseMask = SenseFlags.less | SenseFlags.greater | SenseFlags.equal;
  const requireSense = requireFlags & senseMask;
  const provideSense = provideFlags & senseMask;
  // An unversioned side matches anything.
  if (requireSense === 0 || requireVersion === '' || provideSense === 0 || provideVersion === '') return true;
  const order = compareEvr(parseEvr(provideVersion), parseEvr(requireVersion));
  if (order < 0) return (requireSense & SenseFlags.less) !== 0 || (provideSense & SenseFlags.greater) !== 0;
  if (order > 0) return (requireSense & SenseFlags.greater) !== 0 || (provideSense & SenseFlags.less) !== 0;
  return ((requireSense & SenseFlags.equal) !== 0 && (provideSense & SenseFlags.equal) !== 0) ||
    ((requireSense & SenseFlags.less) !== 0 && (provideSense & SenseFlags.less) !== 0) ||
    ((requireSense & SenseFlags.greater) !== 0 && (provideSense & SenseFlags.greater) !== 0);
}

function isDigit(c: string): boolean { return c >= '0' && c <= '9'; }
function isAlpha(c: string): boolean { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
function isAlnum(c: string): boolean { return isDigit(c) || isAlpha(c); }
