import test from 'ava';
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findOnPath, hostTools, installCommand } from '../../../src/lib/doctor/host-tools.ts';
import { requireHostTools } from '../../../src/lib/doctor/doctor.ts';
import { BrlError, ExitCode } from '../../../src/lib/core/errors.ts';

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
    'apt-get update && apt-get install -y e2fsprogs lz4');
  t.is(installCommand(e2fs, false), 'sudo apt-get update && sudo apt-get install -y e2fsprogs');
});

test('a missing tool is a BrlError with the doctor hint', (t) => {
  const saved = process.env.PATH;
  process.env.PATH = '/nonexistent';
  try {
    // rpmbuild lives in /usr/bin, which the sbin fallback does not search.
    const error = t.throws(() => requireHostTools(['rpmbuild']), { instanceOf: BrlError });
    t.is(error?.exitCode, ExitCode.missingTool);
    t.regex(error?.hint ?? '', /apt-get install -y rpm/);
  } finally {
    process.env.PATH = saved;
  }
});
