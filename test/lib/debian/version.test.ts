import test from 'ava';
import { execFileSync } from 'node:child_process';
import { compareDebianVersions, satisfiesVersion } from '../../../src/lib/debian/version.ts';

// Pairs in ascending order, the cases deb-version(7) spells out: epochs, '~' before everything,
// letters before other characters, digit runs as numbers, revisions.
const ascending: [string, string][] = [
  ['1.0~rc1', '1.0'],
  ['1.0', '1.0+b1'],
  ['1.0', '1.0a'],
  ['1.0a', '1.0+'],
  ['1.9', '1.10'],
  ['1.0-1', '1.0-2'],
  ['1.0-9', '1.0-10'],
  ['252.39-1~deb12u1', '252.39-1'],
  ['252.38-1~deb12u1', '252.39-1~deb12u2'],
  ['9:1.0', '10:0.1'],
  ['2.0', '1:0.1'],
  ['1.0~~', '1.0~'],
  ['1.01', '1.2'],
];

test('Debian versions order as deb-version(7) says', (t) => {
  for (const [low, high] of ascending) {
    t.true(compareDebianVersions(low, high) < 0, `${low} < ${high}`);
    t.true(compareDebianVersions(high, low) > 0, `${high} > ${low}`);
  }
  t.is(compareDebianVersions('1.0-1', '1.0-1'), 0);
  t.is(compareDebianVersions('0:1.0', '1.0'), 0);
  t.is(compareDebianVersions('1.001', '1.1'), 0);
});

test('the order agrees with dpkg --compare-versions on the pairs above', (t) => {
  for (const [low, high] of ascending) {
    // dpkg exits 0 when the relation holds.
    t.notThrows(() => execFileSync('dpkg', ['--compare-versions', low, 'lt', high]), `${low} lt ${high}`);
  }
});

test('relation operators', (t) => {
  t.true(satisfiesVersion('2.36-9', '>=', '2.34'));
  t.false(satisfiesVersion('2.33', '>=', '2.34'));
  t.true(satisfiesVersion('1.0', '<<', '1.0.1'));
  t.false(satisfiesVersion('1.0', '>>', '1.0'));
  t.true(satisfiesVersion('252.39-1~deb12u2', '=', '252.39-1~deb12u2'));
  t.true(satisfiesVersion('1.0', '<=', '1.0'));
});
