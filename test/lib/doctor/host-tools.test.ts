import test from 'ava';
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkHostTools, findOnPath, hostTools, installCommand } from '../../../src/lib/doctor/host-tools.ts';
import { requireHostTools, runDoctor } from '../../../src/lib/doctor/doctor.ts';
import { BrlError, ExitCode } from '../../../src/lib/core/errors.ts';

test('a file-based requirement (headers, firmware) is found by its path, not on PATH', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'brl-path-'));
  writeFileSync(join(dir, 'stdio.h'), '');
  const [present, absent] = checkHostTools([
    { command: 'libc headers', file: join(dir, 'stdio.h'), debianPackage: 'libc6-dev', purpose: 'p', use: 'build' },
    { command: 'libc headers', file: join(dir, 'missing.h'), debianPackage: 'libc6-dev', purpose: 'p', use: 'build' },
  ]);
  t.is(present?.path, join(dir, 'stdio.h'));
  t.is(absent?.path, undefined);
});

test('doctor covers what a C package build needs beyond the gcc binary, and sorts missing tools by use', (t) => {
  // gcc installed without recommends has no libc6-dev: the headers must be a requirement of their own.
  t.truthy(hostTools.find((tool) => tool.debianPackage === 'libc6-dev' && tool.use === 'build'));
  for (const command of ['git', 'openssl', 'qemu-system-x86_64']) t.truthy(hostTools.find((tool) => tool.command === command), command);
  const saved = process.env.PATH;
  process.env.PATH = '/nonexistent';
  try {
    const result = runDoctor([
      { command: 'rpmbuild', debianPackage: 'rpm', purpose: 'p', use: 'build' },
      { command: 'openssl', debianPackage: 'openssl', purpose: 'p', use: 'test' },
      { command: 'OVMF firmware', file: '/nonexistent/OVMF_CODE_4M.fd', debianPackage: 'ovmf', purpose: 'p', use: 'vm' },
    ]);
    t.deepEqual(result.missing, { build: ['rpmbuild'], test: ['openssl'], vm: ['OVMF firmware'] });
    t.regex(result.installCommand ?? '', /apt-get install -y --no-install-recommends openssl ovmf rpm$/);
  } finally {
    process.env.PATH = saved;
  }
});

test('finds an executable on PATH and ignores non-executable files', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'brl-path-'));
  writeFileSync(join(dir, 'brl-fake-tool'), '#!/bin/sh\n');
  chmodSync(join(dir, 'brl-fake-tool'), 0o755);
  writeFileSync(join(dir, 'brl-not-exec'), 'x');
  t.is(findOnPath('brl-fake-tool', dir), join(dir, 'brl-fake-tool'));
  t.is(findOnPath('brl-not-exec', dir), undefined);
});

test('install command names each Debian package once, sorted', (t) => {
  const e2fs = hostTools.filter((tool) => tool.debianPackage === 'e2fsprogs');
  t.true(e2fs.length > 1);
  t.is(installCommand([...e2fs, ...hostTools.filter((tool) => tool.command === 'lz4')], true),
    'apt-get update && apt-get install -y --no-install-recommends e2fsprogs lz4');
  t.is(installCommand(e2fs, false), 'sudo apt-get update && sudo apt-get install -y --no-install-recommends e2fsprogs');
});

test('a missing tool is a BrlError with the doctor hint', (t) => {
  const saved = process.env.PATH;
  process.env.PATH = '/nonexistent';
  try {
    // rpmbuild lives in /usr/bin, which the sbin fallback does not search.
    const error = t.throws(() => requireHostTools(['rpmbuild']), { instanceOf: BrlError });
    t.is(error?.exitCode, ExitCode.missingTool);
    t.regex(error?.hint ?? '', /apt-get install -y --no-install-recommends rpm /);
  } finally {
    process.env.PATH = saved;
  }
});

test('every host tool package installs in one apt-get run: none conflicts with the aarch64 cross compiler', async (t) => {
  // gcc-multilib conflicts with every gcc-*-linux-gnu cross compiler; gcc-12-multilib gives GRUB its -m32 runtime without that.
  t.falsy(hostTools.find((tool) => tool.debianPackage === 'gcc-multilib'));
  t.truthy(hostTools.find((tool) => tool.command === 'aarch64-linux-gnu-gcc' && tool.debianPackage === 'gcc-aarch64-linux-gnu'));
  const packages = [...new Set(hostTools.map((tool) => tool.debianPackage))];
  // apt's own resolver as the oracle: a simulated install changes nothing on the machine.
  const { execFileSync } = await import('node:child_process');
  const simulated = execFileSync('apt-get', ['install', '--simulate', '--no-install-recommends', ...packages], { encoding: 'utf8' });
  t.notRegex(simulated, /^Remv /m);
});

test('the Debian architectures of every arch brl builds are enabled in dpkg on this machine (npm run host-tools)', async (t) => {
  const { missingForeignArchitectures } = await import('../../../src/lib/doctor/foreign-architectures.ts');
  t.deepEqual(missingForeignArchitectures(), []);
});
