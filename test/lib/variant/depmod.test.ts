import test from 'ava';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BrlError } from '../../../src/lib/core/errors.ts';
import { defaultImageFeatures } from '../../../src/lib/variant/features.ts';
import { assembleRootTree, type AssembleInput } from '../../../src/lib/variant/rootfs.ts';

const kernelVersion = '6.1.0-test';

/** A root with /lib → usr/lib (as the image's packages lay it out), one module file, a kernel and an empty System.map. */
function rootWithModule(t: import('ava').ExecutionContext, module: Buffer): AssembleInput {
  const dir = mkdtempSync(join(tmpdir(), 'brl-depmod-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const rootTree = join(dir, 'root');
  mkdirSync(join(rootTree, 'usr/lib/modules', kernelVersion, 'kernel'), { recursive: true });
  symlinkSync('usr/lib', join(rootTree, 'lib'));
  writeFileSync(join(rootTree, 'usr/lib/modules', kernelVersion, 'kernel/sample.ko'), module);
  // What the kernel's build writes beside the modules (depmod warns without them).
  for (const name of ['modules.order', 'modules.builtin', 'modules.builtin.modinfo']) writeFileSync(join(rootTree, 'usr/lib/modules', kernelVersion, name), '');
  mkdirSync(join(rootTree, 'boot'));
  writeFileSync(join(rootTree, 'boot', `System.map-${kernelVersion}`), '');
  writeFileSync(join(rootTree, 'boot', 'vmlinuz'), 'kernel');
  for (const tree of ['boot-tree', 'efi-tree']) mkdirSync(join(dir, tree));
  return {
    rootTree, bootTree: join(dir, 'boot-tree'), efiTree: join(dir, 'efi-tree'),
    inventory: { Content: [] },
    osRelease: { variant: 'test', version: '0.1.0', buildId: 'test', prettyName: 'Test' },
    features: defaultImageFeatures, imageFormat: 'raw', warn: () => {},
  };
}

test('depmod indexes the root\'s modules and System.map leaves the image', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'brl-depmod-ko-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'sample.c'), 'int sample_value = 1;\n');
  execFileSync('gcc', ['-c', '-o', join(dir, 'sample.ko'), join(dir, 'sample.c')]);
  const input = rootWithModule(t, readFileSync(join(dir, 'sample.ko')));
  const result = await assembleRootTree(input);
  t.is(result.kernelVersion, kernelVersion);
  t.is(readFileSync(join(input.rootTree, 'usr/lib/modules', kernelVersion, 'modules.dep'), 'utf8'), 'kernel/sample.ko:\n');
  t.false(existsSync(join(input.rootTree, 'boot', `System.map-${kernelVersion}`)));
  t.false(existsSync(join(input.bootTree, `System.map-${kernelVersion}`)), 'nor BOOT');
});

test('a module depmod cannot read fails the build with depmod\'s own line', async (t) => {
  const input = rootWithModule(t, Buffer.from('not an ELF module\n'));
  const error = await t.throwsAsync(assembleRootTree(input), { instanceOf: BrlError });
  t.is(error?.code, 'DEPMOD_FAILED');
  t.regex(error?.message ?? '', /^depmod reported problems for kernel 6\.1\.0-test:\ndepmod: ERROR: .*kernel\/sample\.ko/);
});
