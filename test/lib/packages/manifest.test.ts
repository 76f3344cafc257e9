import test from 'ava';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadPackage, listPackageNames, parsePackageManifest } from '../../../src/lib/packages/manifest.ts';
import { parseToml } from '../../../src/lib/core/toml.ts';
import { BrlError, ExitCode } from '../../../src/lib/core/errors.ts';

const sha = 'a'.repeat(128);

function parse(text: string) {
  return parsePackageManifest(parseToml('/p/package.toml', text), 'pkg', '/p', '/p/pkg.spec');
}

test('parses external files of every source kind with their default file names', (t) => {
  const manifest = parse(`
build-dependencies = ["release"]

[[external-files]]
url = "https://example.test/dl/hello-1.0.tar.gz?x=1"
sha512 = "${sha}"

[[external-files]]
url = "npm:@scope/tool@1.2.3"
sha512 = "${sha}"

[[external-files]]
url = "deb:linux-image-cloud-amd64=1:6.1.0-1"
sha512 = "${sha}"
path = "kernel.deb"
force-upstream = true
`);
  t.deepEqual(manifest.buildDependencies, ['release']);
  t.deepEqual(
    manifest.externalFiles.map((file) => [file.kind, file.fileName, file.forceUpstream]),
    [
      ['url', 'hello-1.0.tar.gz', false],
      ['npm', 'tool-1.2.3.tgz', false],
      ['deb', 'kernel.deb', true],
    ],
  );
});

test('an unknown key names the file, line and key', (t) => {
  const error = t.throws(() => parse('\n\nbuild-deps = ["x"]\n'), { instanceOf: BrlError });
  t.is(error?.message.startsWith('/p/package.toml:3: build-deps: unknown key'), true);
  t.is(error?.exitCode, ExitCode.badInput);
});

test('a malformed document names the file, line and column', (t) => {
  const error = t.throws(() => parse('a = 1\nb = [\n'), { instanceOf: BrlError });
  t.regex(error?.message ?? '', /^\/p\/package\.toml:3:1: /);
});

test('refuses a path that escapes the package directory', (t) => {
  for (const path of ['../evil', 'a/b', '..']) {
    const error = t.throws(() => parse(`[[external-files]]\nurl = "https://x.test/f"\nsha512 = "${sha}"\npath = "${path}"\n`), {
      instanceOf: BrlError,
    });
    t.regex(error?.message ?? '', /external-files\[0\]\.path: .* single file name/);
  }
});

test('refuses a bad sha512, an unsupported source and a hardening exception without a reason', (t) => {
  t.throws(() => parse(`[[external-files]]\nurl = "https://x.test/f"\nsha512 = "ABC"\n`), {
    message: /sha512: must be 128 lowercase hex digits/,
  });
  t.throws(() => parse(`[[external-files]]\nurl = "ftp://x.test/f"\nsha512 = "${sha}"\n`), {
    message: /unsupported source "ftp:\/\/x.test\/f"/,
  });
  t.throws(() => parse(`[[hardening-exceptions]]\nfile = "/usr/bin/x"\nchecks = ["pie"]\n`), {
    message: /reason: is required/,
  });
  t.throws(() => parse(`[[hardening-exceptions]]\nfile = "/usr/bin/x"\nchecks = ["aslr"]\nreason = "r"\n`), {
    message: /unknown check "aslr"/,
  });
});

test('an unknown package lists the known ones', async (t) => {
  const project = mkdtempSync(join(tmpdir(), 'brl-project-'));
  for (const name of ['zeta', 'alpha']) {
    mkdirSync(join(project, 'packages-specs', name), { recursive: true });
    writeFileSync(join(project, 'packages-specs', name, `${name}.spec`), 'Name: x\n');
  }
  mkdirSync(join(project, 'packages-specs', 'not-a-package'));
  t.deepEqual(await listPackageNames(project), ['alpha', 'zeta']);
  const error = await t.throwsAsync(loadPackage(project, 'beta'), { instanceOf: BrlError });
  t.is(error?.hint, 'known packages: alpha, zeta');
  t.is(error?.exitCode, ExitCode.notFound);
  const alpha = await loadPackage(project, 'alpha');
  t.deepEqual(alpha.externalFiles, []);
});
