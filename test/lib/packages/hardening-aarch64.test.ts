// The hardening check on aarch64 code, compiled here with Debian's cross compiler (aarch64-linux-gnu-gcc).
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EM_AARCH64, readElf } from '../../../src/lib/packages/elf.ts';
import { checkHardening, failedChecks } from '../../../src/lib/packages/hardening.ts';
import { hardeningCflags, hardeningLdflags } from '../../../src/lib/packages/macros.ts';

const workDir = mkdtempSync(join(tmpdir(), 'brl-elf-aarch64-'));
test.after.always(() => rmSync(workDir, { recursive: true, force: true }));
const source = join(workDir, 'prog.c');
writeFileSync(source, '#include <stdio.h>\n#include <string.h>\nint main(int c, char **v) { char b[64]; snprintf(b, sizeof b, "%s", c > 1 ? v[1] : "x"); puts(b); return (int)strlen(b) == 0; }\n');

/** The flags `%set_cross_build_flags` gives every C build. */
const hardened = [...hardeningCflags.split(' '), ...hardeningLdflags.split(' ')];

function crossCompile(output: string, flags: string[]): string {
  execFileSync('aarch64-linux-gnu-gcc', [...flags, '-o', output, source]);
  return output;
}

test('an aarch64 binary built with the hardening flags is read as AArch64 and passes every check', async (t) => {
  const binary = crossCompile(join(workDir, 'hardened'), hardened);
  t.is((await readElf(binary)).machine, EM_AARCH64);
  const result = await failedChecks(binary);
  t.is(result?.kind, 'executable');
  t.deepEqual(result?.failed, []);
});

test('each check fails alone on aarch64 when only its flag is missing', async (t) => {
  const cases: Array<[string, string[], string]> = [
    ['nopie', ['-O2', '-no-pie', '-fno-pie', '-fstack-protector-strong', '-Wl,-z,relro,-z,now', '-Wl,-z,noexecstack'], 'pie'],
    ['partial-relro', ['-O2', '-fPIE', '-pie', '-fstack-protector-strong', '-Wl,-z,relro,-z,lazy', '-Wl,-z,noexecstack'], 'relro'],
    ['execstack', ['-O2', '-fPIE', '-pie', '-fstack-protector-strong', '-Wl,-z,relro,-z,now', '-Wl,-z,execstack'], 'nx-stack'],
    ['no-canary', ['-O2', '-fPIE', '-pie', '-fno-stack-protector', '-Wl,-z,relro,-z,now', '-Wl,-z,noexecstack'], 'stack-protector'],
  ];
  for (const [name, flags, check] of cases) t.deepEqual((await failedChecks(crossCompile(join(workDir, name), flags)))?.failed, [check], name);
});

test('an aarch64 payload with a non-hardened aarch64 binary is refused, and x86-64 code in it is not judged', async (t) => {
  const root = join(workDir, 'root');
  const bin = join(root, 'aarch64-bottlerocket-linux-gnu/sys-root/usr/bin');
  mkdirSync(bin, { recursive: true });
  crossCompile(join(bin, 'legacy'), ['-O2', '-no-pie', '-fno-pie', '-fno-stack-protector', '-Wl,-z,norelro', '-Wl,-z,lazy', '-Wl,-z,execstack']);
  crossCompile(join(bin, 'good'), hardened);
  execFileSync('gcc', ['-O2', '-no-pie', '-fno-pie', '-o', join(bin, 'firmware-tool'), source]);
  const files = ['legacy', 'good', 'firmware-tool'].map((name) => ({ rpm: 'x.aarch64.rpm', path: `/aarch64-bottlerocket-linux-gnu/sys-root/usr/bin/${name}` }));

  const report = await checkHardening(root, files, 'aarch64', []);
  t.false(report.passed);
  t.is(report.checkedFiles, 2);
  t.deepEqual(report.findings.map((finding) => [finding.path, finding.failed]), [['/usr/bin/legacy', ['pie', 'relro', 'nx-stack', 'stack-protector']]]);
  // An exception names the image path, the same on every arch.
  const allowed = await checkHardening(root, files, 'aarch64', [{ file: '/usr/bin/legacy', checks: ['pie', 'relro', 'nx-stack', 'stack-protector'], reason: 'vendor build' }]);
  t.true(allowed.passed);
});
