import test from 'ava';
import { BrlError } from '../../../src/lib/core/errors.ts';
import { parseToml } from '../../../src/lib/core/toml.ts';
import { lookasidePath, lookasideUrl } from '../../../src/lib/fetch/index.ts';
import { parsePackageManifest } from '../../../src/lib/packages/manifest.ts';

const digest = 'ab'.repeat(64);

test('the local cache and mirrors use the Bottlerocket layout <file>/<sha512>/<file>', (t) => {
  const file = { fileName: 'hello-2.12.tar.gz', sha512: digest };
  t.is(lookasidePath('/cache', file), `/cache/hello-2.12.tar.gz/${digest}/hello-2.12.tar.gz`);
  t.is(lookasideUrl('https://cache.bottlerocket.aws/', file), `https://cache.bottlerocket.aws/hello-2.12.tar.gz/${digest}/hello-2.12.tar.gz`);
  t.is(lookasideUrl('https://m.example/lookaside', { fileName: 'x y.tgz', sha512: digest }), `https://m.example/lookaside/x%20y.tgz/${digest}/x%20y.tgz`);
});

test('a file name that would escape the cache or package directory is refused', (t) => {
  for (const fileName of ['../evil', 'a/b', '..', '.', '', 'a\\b']) {
    const error = t.throws(() => lookasidePath('/cache', { fileName, sha512: digest }), { instanceOf: BrlError });
    t.is(error?.code, 'BAD_EXTERNAL_FILE_PATH');
  }
  t.throws(() => lookasidePath('/cache', { fileName: 'ok.tgz', sha512: '../../etc' }), { instanceOf: BrlError });
});

test('package.toml refuses a path that escapes the package directory, naming file, line and key', (t) => {
  const doc = parseToml(
    '/p/packages-specs/evil/package.toml',
    `[[external-files]]\nurl = "https://example.com/a.tgz"\nsha512 = "${digest}"\npath = "../../outside.tgz"\n`,
  );
  const error = t.throws(() => parsePackageManifest(doc, 'evil', '/p/packages-specs/evil', '/p/packages-specs/evil/evil.spec'), {
    instanceOf: BrlError,
  });
  t.regex(error?.message ?? '', /^\/p\/packages-specs\/evil\/package\.toml:4: external-files\[0\]\.path: "\.\.\/\.\.\/outside\.tgz" must be a single file name/);
});
