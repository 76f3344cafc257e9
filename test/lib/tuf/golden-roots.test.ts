import test from 'ava';
import { readFileSync } from 'node:fs';
import { parseRoot } from '../../../src/lib/tuf/root.ts';
import { requireThreshold, signatureReport } from '../../../src/lib/tuf/verify.ts';

const fixture = (name: string) => readFileSync(new URL(`fixtures/${name}`, import.meta.url));

test('a root written by tough/tuftool parses, its RSA key ID matches and its RSA-PSS signature verifies', (t) => {
  const root = parseRoot(fixture('tough-rsa-root.json'), 'tough-rsa-root.json');
  const report = requireThreshold(root, 'root', root.signed, 'tough-rsa-root.json');
  t.deepEqual(report.validKeyIds, ['d43f6cc7b75da64fb53b8160dc74b39148859e3eb73b6186afb18e3b4f7caece']);
});

test('a tuf-on-ci root (ECDSA, extra key fields, spec 1.0.31) meets its 3-of-7 threshold', (t) => {
  const root = parseRoot(fixture('tuf-on-ci-root.json'), 'tuf-on-ci-root.json');
  const report = requireThreshold(root, 'root', root.signed, 'tuf-on-ci-root.json');
  t.is(report.validKeyIds.length, 7);
  t.deepEqual(report.unauthorizedKeyIds, ['4f4d1dd75f2d7f3860e3a068d7bed90dec5f0faafcbe1ace7fb7d95d29e07228']);
});

test('changing one signed byte of a golden root breaks its signature', (t) => {
  const tampered = fixture('tough-rsa-root.json').toString('utf8').replace('2030-04-23T21:36:30Z', '2030-04-23T21:36:31Z');
  const root = parseRoot(tampered, 'tampered');
  t.is(signatureReport(root, 'root', root.signed).validKeyIds.length, 0);
  t.throws(() => requireThreshold(root, 'root', root.signed, 'tampered'), { message: /0 valid signature\(s\) of 1/ });
});

test('a root whose key ID does not match its key is refused', (t) => {
  const text = fixture('tough-rsa-root.json').toString('utf8').replaceAll('d43f6cc7b75da64f', 'e43f6cc7b75da64f');
  t.throws(() => parseRoot(text, 'bad-keyid.json'), { message: /key ID e43f6cc7b75da64f\w+ does not match its key/ });
});
