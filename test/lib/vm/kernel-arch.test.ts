// brl vm run's kernel arch check on the kernels brl really ships: /boot/vmlinuz out of the kernel
// RPMs built for each arch (Debian's signed cloud kernels: EFI-stub PE images), and the arm64 one
// in the two other forms arm64 kernels come in: gzip'd (Debian's unsigned vmlinuz) and wrapped
// as an EFI zboot image.
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { buildPackages } from '../../../src/lib/packages/build.ts';
import type { Architecture } from '../../../src/lib/variant/definition.ts';
import { kernelArch } from '../../../src/lib/vm/image.ts';
import { repoDir } from '../../helpers/cli.ts';

const work = mkdtempSync(join(tmpdir(), 'brl-kernel-arch-'));
test.after.always(() => rmSync(work, { recursive: true, force: true }));

/** /boot/vmlinuz of the kernel RPM for `arch` (built, or taken from the package cache). */
async function shippedKernel(arch: Architecture): Promise<Buffer> {
  const result = await buildPackages(repoDir, { names: ['kernel'], arch, progress: 'silent' });
  const rpm = result.packages.flatMap((pkg) => pkg.rpms).find((path) => /\/bottlerocket-kernel-\d[^/]*\.rpm$/.test(path));
  if (rpm === undefined) throw new Error(`no kernel RPM for ${arch}`);
  const dir = mkdtempSync(join(work, `${arch}-`));
  execFileSync('sh', ['-c', 'rpm2cpio "$1" | cpio -idm --quiet', 'sh', rpm], { cwd: dir });
  return readFileSync(join(dir, `${arch}-bottlerocket-linux-gnu`, 'sys-root', 'boot', 'vmlinuz'));
}

/**
 * An EFI zboot image around `payload`, laid out as Linux's zboot-header.S does: `MZ`, `zimg`, the
 * payload's offset and size, its compression type, and a PE header whose machine is the arch of the
 * kernel inside.
 */
function zboot(payload: Buffer, machine: number): Buffer {
  const header = Buffer.alloc(0x200);
  header.write('MZ', 0, 'latin1');
  header.write('zimg', 4, 'latin1');
  header.writeUInt32LE(header.length, 8);
  header.writeUInt32LE(payload.length, 12);
  header.write('gzip\0', 0x18, 'latin1');
  header.writeUInt32LE(0x818223cd, 0x38);
  header.writeUInt32LE(0x40, 0x3c);
  header.write('PE\0\0', 0x40, 'latin1');
  header.writeUInt16LE(machine, 0x44);
  return Buffer.concat([header, payload]);
}

test('the x86_64 and aarch64 kernels brl packages are told apart, as shipped, gzip\'d and as EFI zboot images', async (t) => {
  const x86 = await shippedKernel('x86_64');
  const arm = await shippedKernel('aarch64');
  t.is(kernelArch(x86), 'x86_64');
  t.is(kernelArch(arm), 'aarch64');
  const armGzip = gzipSync(arm, { level: 9 });
  t.is(kernelArch(armGzip), 'aarch64', 'a gzip\'d arm64 Image');
  // Only its start is read: the headers are in the first 64 KiB of what it inflates to.
  t.is(kernelArch(armGzip.subarray(0, 70 * 1024)), 'aarch64', 'a gzip\'d Image cut short');
  t.is(kernelArch(zboot(armGzip, 0xaa64)), 'aarch64', 'an arm64 EFI zboot image');
  t.is(kernelArch(zboot(gzipSync(x86), 0x8664)), 'x86_64', 'an x86_64 EFI zboot image');
});

test('a kernel of another kind, damaged headers and a gzip of something else are unknown, not guessed', async (t) => {
  const arm = await shippedKernel('aarch64');
  t.is(kernelArch(Buffer.alloc(4096)), undefined);
  t.is(kernelArch(gzipSync(Buffer.alloc(4096))), undefined, 'a gzip of zeros');
  t.is(kernelArch(gzipSync(gzipSync(arm.subarray(0, 4096)))), undefined, 'gzip is unwrapped once');
  t.is(kernelArch(Buffer.from([0x1f, 0x8b, 0x08, 0x00, 0xde, 0xad])), undefined, 'a broken gzip stream');
  const riscv = Buffer.from(arm.subarray(0, 4096));
  riscv.write('RSC\x05', 0x38, 'latin1');
  riscv.writeUInt16LE(0x5064, riscv.readUInt32LE(0x3c) + 4);
  t.is(kernelArch(riscv), undefined, 'a riscv64 Image: another magic and PE machine');
  const truncatedPe = Buffer.alloc(0x40);
  truncatedPe.write('MZ', 0, 'latin1');
  truncatedPe.writeUInt32LE(0x1000, 0x3c);
  t.is(kernelArch(truncatedPe), undefined, 'a PE header offset beyond the bytes read');
});
