import test from 'ava';
import { canonicalize as tufjsCanonicalize } from '@tufjs/canonical-json';
import { canonicalize, sortedJson } from '../../../src/lib/tuf/canonical-json.ts';

const sample = { b: { c: 'line1\nline2', a: -5 }, a: [1, 'x"y\\z', true, null], Z: '' };

test('canonical JSON sorts keys, drops whitespace and escapes only quote and backslash (golden)', (t) => {
  t.is(canonicalize(sample), '{"Z":"","a":[1,"x\\"y\\\\z",true,null],"b":{"a":-5,"c":"line1\nline2"}}');
});

test('canonical JSON matches @tufjs/canonical-json byte for byte', (t) => {
  const documents: unknown[] = [
    sample,
    { signed: { _type: 'targets', targets: { 'a/b.lz4': { length: 0, hashes: { sha256: 'ab' } } }, version: 1795631377 } },
    { keyval: { public: '-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----\n' }, tab: '\t', unicode: 'é✓', ctrl: '\u0001' },
    [[], {}, '', 0, Number.MAX_SAFE_INTEGER, -1],
  ];
  for (const document of documents) t.is(canonicalize(document), tufjsCanonicalize(document));
});

test('canonical JSON refuses floats and undefined', (t) => {
  t.throws(() => canonicalize({ a: 1.5 }), { message: /only integers/ });
  t.throws(() => canonicalize({ a: undefined }), { message: /undefined/ });
});

test('files are sorted JSON that parses back, identical to canonical JSON without control characters', (t) => {
  t.deepEqual(JSON.parse(sortedJson(sample)), sample);
  t.is(sortedJson(sample), '{"Z":"","a":[1,"x\\"y\\\\z",true,null],"b":{"a":-5,"c":"line1\\nline2"}}');
  const plain = { b: 1, a: ['x', { d: 'é' }] };
  t.is(sortedJson(plain), canonicalize(plain));
});
