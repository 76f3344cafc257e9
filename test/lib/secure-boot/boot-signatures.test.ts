// The build's side and the host's side of BOOT signatures meet: files signed by the build's writeGrubSignature, in a BOOT made by mkfs.ext4, verify with the key placeGrubKey puts into the root, and with no other.
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { handleReader } from '../../../src/lib/image/image-reader.ts';
import { bottlerocketVerityTable } from '../../../src/lib/image/verity-table.ts';
import { placeGrubKey, writeGrubSignature } from '../../../src/lib/secure-boot/boot-path.ts';
import { grubConfigLoads, imageGrubKeyPath, verifyBootSignatures } from '../../../src/lib/secure-boot/boot-signatures.ts';
import { initKeySet, loadBootSigningKeys, type BootSigningKeys } from '../../../src/lib/secure-boot/key-set.ts';
import { readPublicKey } from '../../../src/lib/secure-boot/openpgp.ts';
import { renderGrubConfig } from '../../../src/lib/variant/grub.ts';

const scratch = mkdtempSync(join(tmpdir(), 'brl-boot-signatures-'));
test.after.always(() => rmSync(scratch, { recursive: true, force: true }));

const options = { validDays: 30, rsaBits: 2048 as const };
const keySets = Promise.all(['project', 'other'].map(async (name) => {
  await initKeySet(join(scratch, name), { ...options, organization: name });
  return loadBootSigningKeys({ dir: join(scratch, name) });
}));

const grubCfg = renderGrubConfig({
  prettyName: 'Bottlerocket OS', versionId: '1.2.0', kernelParameters: ['console=ttyS0'], secureBoot: true,
  initrd: { initramfs: true, bootconfig: false },
  dmVerityTable: bottlerocketVerityTable({ dataBlocks: 1, rootHash: 'ab'.repeat(32), salt: 'cd'.repeat(32) }),
});

/** A BOOT filesystem as a Secure Boot build lays it out, signed by `keys`; `edit` runs on the tree after signing. */
async function signedBoot(name: string, keys: BootSigningKeys, edit: (tree: string) => void = () => undefined): Promise<string> {
  const tree = join(scratch, `${name}-tree`);
  mkdirSync(join(tree, 'grub'), { recursive: true });
  writeFileSync(join(tree, 'grub', 'grub.cfg'), grubCfg);
  writeFileSync(join(tree, 'vmlinuz'), Buffer.alloc(3 * 1024 * 1024, 0x4d));
  writeFileSync(join(tree, 'initrd.img'), Buffer.alloc(200 * 1024, 0x07));
  for (const file of ['grub/grub.cfg', 'vmlinuz', 'initrd.img']) await writeGrubSignature(join(tree, file), keys, 1_780_000_000, 0o600);
  edit(tree);
  const image = join(scratch, `${name}.ext4`);
  execFileSync('mkfs.ext4', ['-q', '-F', '-b', '4096', '-O', '^has_journal', '-d', tree, image, '16M'], { stdio: 'pipe' });
  return image;
}

async function verify(image: string, keyring: Buffer): Promise<string[] | string> {
  const handle = await open(image, 'r');
  try {
    return await verifyBootSignatures(handleReader(handle), 0, readPublicKey(keyring, 'grub.gpg'), 'BOOT-B', 40 * 1024 * 1024);
  } catch (error) {
    return `${(error as { code?: string }).code}: ${(error as Error).message}`;
  } finally {
    await handle.close();
  }
}

test('a BOOT signed by the build verifies with the key the build places in the root filesystem, mode 0644', async (t) => {
  const [project] = await keySets;
  const root = join(scratch, 'root');
  await placeGrubKey(root, project!);
  const placed = join(root, imageGrubKeyPath);
  t.is(statSync(placed).mode & 0o777, 0o644);
  t.deepEqual(await verify(await signedBoot('good', project!), readFileSync(placed)), ['/grub/grub.cfg', '/vmlinuz', '/initrd.img']);
});

test('a BOOT signed by another project\'s keys is refused, naming grub.cfg.sig and both keys', async (t) => {
  const [project, other] = await keySets;
  t.regex(String(await verify(await signedBoot('other', other!), project!.grub.publicKeyFile)),
    /^BAD_SIGNATURE: BOOT-B: \/grub\/grub\.cfg\.sig: was made by key [0-9A-F]{40}, not by the trusted key [0-9A-F]{40}$/);
});

test('a kernel replaced after signing is refused by its signature', async (t) => {
  const [project] = await keySets;
  const image = await signedBoot('kernel', project!, (tree) => writeFileSync(join(tree, 'vmlinuz'), Buffer.alloc(3 * 1024 * 1024, 0x4e)));
  t.regex(String(await verify(image, project!.grub.publicKeyFile)), /^BAD_SIGNATURE: BOOT-B: \/vmlinuz\.sig: (does not match the data|the RSA signature does not verify)/);
});

test('grub.cfg as brl renders it loads the kernel and initrd from BOOT; PRIVATE\'s bootconfig cannot be checked and is refused', (t) => {
  t.deepEqual(grubConfigLoads(grubCfg, 'BOOT-B'), ['/vmlinuz', '/initrd.img']);
  const withBootconfig = grubCfg.replace('initrd ($root)/initrd.img', 'initrd ($root)/initrd.img ($private)/bootconfig.data');
  const error = t.throws(() => grubConfigLoads(withBootconfig, 'BOOT-B'));
  t.is((error as { code?: string }).code, 'UNCHECKABLE_BOOT_FILE');
  t.regex(error!.message, /loads \(\$private\)\/bootconfig\.data, which is not a file on BOOT/);
  t.throws(() => grubConfigLoads('set default="0"\n', 'BOOT-B'), { message: /loads no kernel/ });
});
