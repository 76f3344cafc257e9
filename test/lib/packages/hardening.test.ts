import test from 'ava';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { elfKind, readElf } from '../../../src/lib/packages/elf.ts';
import { checkHardening, failedChecks, findException, imagePath } from '../../../src/lib/packages/hardening.ts';

const workDir = mkdtempSync(join(tmpdir(), 'brl-elf-'));
const source = join(workDir, 'prog.c');
writeFileSync(source, '#include <stdio.h>\n#include <string.h>\nint main(int c, char **v) { char b[64]; snprintf(b, sizeof b, "%s", c > 1 ? v[1] : "x"); puts(b); return (int)strlen(b) == 0; }\n');
const libSource = join(workDir, 'lib.c');
writeFileSync(libSource, '#include <string.h>\nint copy(const char *s) { char b[64]; strncpy(b, s, sizeof b - 1); b[63] = 0; return (int)strlen(b); }\n');

const hardened = ['-O2', '-fPIE', '-pie', '-fstack-protector-strong', '-Wl,-z,relro,-z,now', '-Wl,-z,noexecstack'];

function compile(name: string, flags: string[], input = source): string {
  const output = join(workDir, name);
  execFileSync('gcc', [...flags, '-o', output, input]);
  return output;
}

test('a binary built with the hardening flags passes every check', async (t) => {
  const result = await failedChecks(compile('hardened', hardened));
  t.deepEqual(result?.failed, []);
  t.is(result?.kind, 'executable');
});

test('a non-PIE, lazily bound, exec-stack, unprotected binary fails every check', async (t) => {
  const result = await failedChecks(
    compile('unhardened', ['-O2', '-no-pie', '-fno-pie', '-fno-stack-protector', '-Wl,-z,norelro', '-Wl,-z,lazy', '-Wl,-z,execstack']),
  );
  t.is(result?.kind, 'executable');
  t.deepEqual(result?.failed, ['pie', 'relro', 'nx-stack', 'stack-protector']);
});

test('each check fails alone when only its flag is missing', async (t) => {
  const cases: Array<[string, string[], string]> = [
    ['nopie', ['-O2', '-no-pie', '-fno-pie', '-fstack-protector-strong', '-Wl,-z,relro,-z,now', '-Wl,-z,noexecstack'], 'pie'],
    ['partial-relro', ['-O2', '-fPIE', '-pie', '-fstack-protector-strong', '-Wl,-z,relro,-z,lazy', '-Wl,-z,noexecstack'], 'relro'],
    ['execstack', [...hardened.slice(0, -1), '-Wl,-z,execstack'], 'nx-stack'],
    ['no-canary', ['-O2', '-fPIE', '-pie', '-fno-stack-protector', '-Wl,-z,relro,-z,now', '-Wl,-z,noexecstack'], 'stack-protector'],
  ];
  for (const [name, flags, check] of cases) t.deepEqual((await failedChecks(compile(name, flags)))?.failed, [check], name);
});

test('a shared object is not held to PIE but to the other checks', async (t) => {
  const lib = compile('libok.so', ['-O2', '-fPIC', '-shared', '-fstack-protector-strong', '-Wl,-z,relro,-z,now', '-Wl,-z,noexecstack'], libSource);
  const info = await readElf(lib);
  t.is(elfKind(info), 'shared-object');
  t.deepEqual((await failedChecks(lib))?.failed, []);
  const lazy = compile('liblazy.so', ['-O2', '-fPIC', '-shared', '-fno-stack-protector', '-Wl,-z,lazy', '-Wl,-z,noexecstack'], libSource);
  t.deepEqual((await failedChecks(lazy))?.failed, ['relro', 'stack-protector']);
});

test('relocatable objects such as kernel modules are not checked', async (t) => {
  const object = join(workDir, 'mod.o');
  execFileSync('gcc', ['-c', '-o', object, libSource]);
  t.is(await failedChecks(object), undefined);
});

test('exceptions match image paths exactly or by a trailing-* prefix, per check', (t) => {
  const exceptions = [
    { file: '/usr/bin/node', checks: ['pie' as const], reason: 'upstream binary' },
    { file: '/usr/libexec/vendor/*', checks: ['pie' as const, 'stack-protector' as const], reason: 'vendor blobs' },
  ];
  t.is(findException(exceptions, '/usr/bin/node', 'pie')?.reason, 'upstream binary');
  t.is(findException(exceptions, '/usr/bin/node', 'relro'), undefined);
  t.is(findException(exceptions, '/usr/bin/nodejs', 'pie'), undefined);
  t.is(findException(exceptions, '/usr/libexec/vendor/x/tool', 'stack-protector')?.reason, 'vendor blobs');
  t.is(imagePath('/x86_64-bottlerocket-linux-gnu/sys-root/usr/bin/node', 'x86_64'), '/usr/bin/node');
  t.is(imagePath('/aarch64-bottlerocket-linux-gnu/sys-root/usr/bin/node', 'x86_64'), '/aarch64-bottlerocket-linux-gnu/sys-root/usr/bin/node');
});

test('the payload check reports unallowed failures and records allowed ones with their reason', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'brl-root-'));
  const bin = join(root, 'x86_64-bottlerocket-linux-gnu/sys-root/usr/bin');
  mkdirSync(bin, { recursive: true });
  execFileSync('gcc', ['-O2', '-no-pie', '-fno-pie', '-fstack-protector-strong', '-Wl,-z,relro,-z,now', '-o', join(bin, 'legacy'), source]);
  execFileSync('gcc', [...hardened, '-o', join(bin, 'good'), source]);
  writeFileSync(join(bin, 'script'), '#!/bin/sh\necho not an ELF file, long enough to be read as one if we did not check the magic\n');
  const files = ['legacy', 'good', 'script'].map((name) => ({ rpm: 'x.rpm', path: `/x86_64-bottlerocket-linux-gnu/sys-root/usr/bin/${name}` }));

  const strict = await checkHardening(root, files, 'x86_64', []);
  t.false(strict.passed);
  t.is(strict.checkedFiles, 2);
  t.deepEqual(strict.findings.map((finding) => [finding.path, finding.failed]), [['/usr/bin/legacy', ['pie']]]);

  const allowed = await checkHardening(root, files, 'x86_64', [{ file: '/usr/bin/legacy', checks: ['pie'], reason: 'vendor build' }]);
  t.true(allowed.passed);
  t.deepEqual(allowed.findings[0]?.allowed, [{ check: 'pie', reason: 'vendor build' }]);

  t.true((await checkHardening(root, files, 'aarch64', [])).passed, 'x86-64 code is not checked in an aarch64 build');
});

test('static binaries are judged from .symtab, and a stripped one cannot show a stack protector', async (t) => {
  const flags = ['-O2', '-fstack-protector-strong', '-Wl,-z,relro,-z,now'];
  t.deepEqual((await failedChecks(compile('static', ['-static', ...flags])))?.failed, ['pie']);
  t.deepEqual((await failedChecks(compile('static-pie', ['-static-pie', '-fPIE', ...flags])))?.failed, []);
  const stripped = join(workDir, 'static-pie-stripped');
  execFileSync('strip', ['-o', stripped, join(workDir, 'static-pie')]);
  t.deepEqual((await failedChecks(stripped))?.failed, ['stack-protector']);
});
