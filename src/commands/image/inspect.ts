// `brl image inspect`: partition table, A/B flags, verity parameters and os-release of a disk image.
import { Args } from '@oclif/core';
import { BrlCommand } from '../../lib/cli/base-command.ts';
import { inspectImage, type ImageInspection } from '../../lib/image/inspect.ts';

export default class ImageInspect extends BrlCommand<ImageInspection> {
  static override summary = 'Show the partition table, A/B boot flags, dm-verity parameters and os-release of a disk image.';
  static override description = 'Works on raw disk images and on LZ4-compressed ones (.img.lz4), read in place: only the blocks that hold the partition table, the verity superblocks, grub.cfg and os-release are decoded, so memory stays bounded whatever the image size.';
  static override examples = [
    '<%= config.bin %> image inspect build/images/x86_64-dev/latest/bottlerocket-dev-x86_64.img.lz4',
    '<%= config.bin %> image inspect disk.img --json',
  ];
  static override args = {
    path: Args.string({ description: 'disk image (raw or .img.lz4)', required: true }),
  };

  async run(): Promise<ImageInspection> {
    const { args } = await this.parse(ImageInspect);
    const result = await inspectImage(args.path);
    this.say(`${result.path} (${result.format}, ${(result.sizeBytes / 1024 / 1024).toFixed(0)} MiB), disk GUID ${result.diskGuid}`);
    for (const problem of result.gptProblems) this.say(`GPT problem: ${problem}`);
    if (result.gptSource === 'backup') this.say('GPT read from the backup copy');
    this.say('');
    this.say(`${'#'.padStart(3)}  ${'role'.padEnd(11)} ${'name'.padEnd(24)} ${'start MiB'.padStart(9)} ${'size MiB'.padStart(9)}  flags`);
    for (const partition of result.partitions) {
      const flags = partition.gptprio
        ? `priority=${partition.gptprio.priority} tries=${partition.gptprio.triesLeft} successful=${partition.gptprio.successful}`
        : partition.bootEverSucceeded !== undefined ? `boot-ever-succeeded=${partition.bootEverSucceeded}` : '';
      this.say(`${String(partition.number).padStart(3)}  ${partition.role.padEnd(11)} ${partition.name.padEnd(24)} ` +
        `${(partition.offsetBytes / 1048576).toFixed(0).padStart(9)} ${(partition.sizeBytes / 1048576).toFixed(0).padStart(9)}  ${flags}`);
    }
    for (const verity of result.verity) {
      this.say(`\nverity ${verity.bank}: ${verity.dataBlocks} data blocks, ${verity.algorithm}, salt ${verity.salt}, uuid ${verity.uuid}`);
    }
    for (const grub of result.grub) this.say(`grub.cfg ${grub.bank}: root hash ${grub.rootHash}, ${grub.dataBlocks} data blocks`);
    if (result.osRelease) {
      this.say('');
      for (const [key, value] of Object.entries(result.osRelease)) this.say(`${key}=${value}`);
    }
    return result;
  }
}
