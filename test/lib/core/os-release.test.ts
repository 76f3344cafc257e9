import test from 'ava';
import { execFileSync } from 'node:child_process';
import { parseOsRelease } from '../../../src/lib/core/os-release.ts';

test('parses a Bottlerocket os-release: bare and double-quoted values', (t) => {
  const text = [
    'NAME=Bottlerocket',
    'ID=bottlerocket',
    'VERSION="1.26.1 (aws-k8s-1.31)"',
    'PRETTY_NAME="Bottlerocket OS 1.26.1 (aws-k8s-1.31)"',
    'VARIANT_ID=aws-k8s-1.31',
    'VERSION_ID=1.26.1',
    'BUILD_ID=943d9a41',
    'HOME_URL="https://github.com/bottlerocket-os/bottlerocket"',
    '',
  ].join('\n');
  t.deepEqual(parseOsRelease(text), {
    NAME: 'Bottlerocket',
    ID: 'bottlerocket',
    VERSION: '1.26.1 (aws-k8s-1.31)',
    PRETTY_NAME: 'Bottlerocket OS 1.26.1 (aws-k8s-1.31)',
    VARIANT_ID: 'aws-k8s-1.31',
    VERSION_ID: '1.26.1',
    BUILD_ID: '943d9a41',
    HOME_URL: 'https://github.com/bottlerocket-os/bottlerocket',
  });
});

test('skips comments, blank lines and lines that are not assignments; tolerates CRLF and indentation', (t) => {
  t.deepEqual(parseOsRelease('# a comment\r\n\r\n  ID=fedora\r\nnot an assignment\r\n=no-key\r\nVERSION_ID=41\r\n'), { ID: 'fedora', VERSION_ID: '41' });
});

test('single-quoted values are literal, double-quoted ones lose the backslash before " \\ $ and `', (t) => {
  const fields = parseOsRelease([
    `A='it is $HOME \\n'`,
    'B="say \\"hi\\" for \\$5, \\`cmd\\` and \\\\ once"',
    'C="a \\n stays"',
    'D=""',
  ].join('\n'));
  t.is(fields.A, 'it is $HOME \\n');
  t.is(fields.B, 'say "hi" for $5, `cmd` and \\ once');
  t.is(fields.C, 'a \\n stays');
  t.is(fields.D, '');
});

test('values agree with what a POSIX shell assigns from the same file', (t) => {
  const text = [
    'PRETTY_NAME="Bottlerocket OS 1.26.1 (aws-dev)"',
    `SINGLE='x "y" $z'`,
    'ESCAPED="a \\"b\\" \\$c \\\\d"',
    'BARE=plain-1.0',
  ].join('\n');
  const fields = parseOsRelease(text);
  for (const key of ['PRETTY_NAME', 'SINGLE', 'ESCAPED', 'BARE']) {
    const fromShell = execFileSync('sh', ['-c', `${text}\nprintf %s "$${key}"`], { encoding: 'utf8' });
    t.is(fields[key], fromShell, key);
  }
});

test('an unterminated quote keeps the value as written, and the last assignment of a key wins', (t) => {
  t.deepEqual(parseOsRelease('ID="broken\nID2=\'x\nVERSION_ID=1\nVERSION_ID=2'), { ID: '"broken', ID2: "'x", VERSION_ID: '2' });
});
