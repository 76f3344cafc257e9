// Debian version ordering (deb-version(7)): [epoch:]upstream[-revision], compared as dpkg does.

export interface DebianVersion {
  epoch: number;
  upstream: string;
  revision: string;
}

export function parseDebianVersion(text: string): DebianVersion {
  const colon = text.indexOf(':');
  const epoch = colon === -1 ? 0 : Number(text.slice(0, colon));
  const rest = colon === -1 ? text : text.slice(colon + 1);
  const dash = rest.lastIndexOf('-');
  return {
    epoch: Number.isInteger(epoch) ? epoch : 0,
    upstream: dash === -1 ? rest : rest.slice(0, dash),
    revision: dash === -1 ? '' : rest.slice(dash + 1),
  };
}

/** Negative, zero or positive as `a` sorts before, with or after `b`. */
export function compareDebianVersions(a: string, b: string): number {
  const left = parseDebianVersion(a);
  const right = parseDebianVersion(b);
  if (left.epoch !== right.epoch) return left.epoch - right.epoch;
  return compareFragment(left.upstream, right.upstream) || compareFragment(left.revision, right.revision);
}

// '~' sorts before everything, even the end of the string; letters before other characters.
function order(char: string | undefined): number {
  if (char === undefined) return 0;
  if (char === '~') return -1;
  if (/[A-Za-z]/.test(char)) return char.charCodeAt(0);
  return char.charCodeAt(0) + 256;
}

function compareFragment(a: string, b: string): number {
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    // The non-digit prefixes, character by character.
    while ((i < a.length && !isDigit(a[i])) || (j < b.length && !isDigit(b[j]))) {
      const left = i < a.length && !isDigit(a[i]) ? order(a[i]) : 0;
      const right = j < b.length && !isDigit(b[j]) ? order(b[j]) : 0;
      if (left !== right) return left - right;
      i++;
      j++;
    }
    // Then the digit runs, as numbers.
    while (a[i] === '0') i++;
    while (b[j] === '0') j++;
    let firstDiff = 0;
    while (isDigit(a[i]) && isDigit(b[j])) {
      if (firstDiff === 0) firstDiff = a.charCodeAt(i) - b.charCodeAt(j);
      i++;
      j++;
    }
    if (isDigit(a[i])) return 1;
    if (isDigit(b[j])) return -1;
    if (firstDiff !== 0) return firstDiff;
  }
  return 0;
}

function isDigit(char: string | undefined): boolean {
  return char !== undefined && char >= '0' && char <= '9';
}

export type RelationOperator = '<<' | '<=' | '=' | '>=' | '>>';

export function satisfiesVersion(version: string, operator: RelationOperator, wanted: string): boolean {
  const cmp = compareDebianVersions(version, wanted);
  switch (operator) {
    case '<<': return cmp < 0;
    case '<=': return cmp <= 0;
    case '=': return cmp === 0;
    case '>=': return cmp >= 0;
    case '>>': return cmp > 0;
  }
}
