// `brl image verify`: GPT, verity tree and grub.cfg root hash checks of a disk image; exit 6 naming what differs.
import { Args, Flags } from '@oclif/core';
import { BrlCommand } from '../../lib/cli/base-command.ts';
import { assertImageVerified, verifyImage, type VerifyReport } from '../../lib/image/verify.ts';

export default class ImageVerify extends BrlCommand<VerifyReport> {
  static override summary = 'Check a disk image: GPT CRCs, the dm-verity tree of a bank against its root, and the root hash in grub.cfg.';
  static override description = 'Exits with code 6 naming every check that fails, e.g. the first ROOT data block whose content does not match the hash tree.';
  static override examples = [
    '<%= config.bin %> image verify build/images/x86_64-dev/latest/bottlerocket-dev-x86_64.img.lz4',
    '<%= config.bin %> image verify disk.img --bank B --json',
  ];
  static override args = {
    path: Args.string({ description: 'disk image (raw or .img.lz4)', required: true }),
  };
  static override flags = {
    bank: Flags.string({ description: 'which bank to verify', options: ['A', 'B'], default: 'A' }),
  };

  async run(): Promise<VerifyReport> {
    const { args, flags } = await this.parse(ImageVerify);
    const report = await verifyImage(args.path, { bank: flags.bank === 'B' ? 'B' : 'A' });
    for (const check of report.checks) this.say(`${check.ok ? 'ok  ' : 'FAIL'} ${check.name.padEnd(17)} ${check.detail}`);
    assertImageVerified(report);
    return report;
  }
}
