import { Args, Flags } from '@oclif/core';
import { BrlCommand } from '../../../lib/cli/base-command.ts';
import { editManifestFile } from '../../../lib/repo/manifest-file.ts';
import { addUpdate, type Manifest } from '../../../lib/update-metadata/index.ts';

export default class ManifestAddUpdate extends BrlCommand<Manifest> {
  static override summary = 'Add an update to a manifest.json (created when missing).';
  static override description = 'Without --max-version the ceiling becomes max(version, the first update\'s max_version), and every update of the same variant and arch gets it, as pubsys does. New updates start with no waves (ready at once): set them with set-waves.';
  static override examples = [
    '<%= config.bin %> repo manifest add-update manifest.json --variant dev --arch x86_64 --version 1.1.0 --boot b.ext4.lz4 --root r.ext4.lz4 --hash r.verity.lz4',
  ];

  static override args = { file: Args.string({ description: 'manifest.json', required: true }) };
  static override flags = {
    variant: Flags.string({ char: 'f', description: 'variant', required: true }),
    arch: Flags.string({ char: 'a', description: 'architecture', required: true }),
    version: Flags.string({ char: 'v', description: 'image version (semver)', required: true }),
    'max-version': Flags.string({ char: 'm', description: 'fleet ceiling (default: see above)' }),
    boot: Flags.string({ char: 'b', description: 'target name of the boot image', required: true }),
    root: Flags.string({ char: 'r', description: 'target name of the root image', required: true }),
    hash: Flags.string({ char: 'h', description: 'target name of the verity hash image', required: true }),
  };

  async run(): Promise<Manifest> {
    const { args, flags } = await this.parse(ManifestAddUpdate);
    const manifest = await editManifestFile(args.file, (current) => addUpdate(current, {
      variant: flags.variant,
      arch: flags.arch,
      version: flags.version,
      ...(flags['max-version'] ? { maxVersion: flags['max-version'] } : {}),
      images: { boot: flags.boot, root: flags.root, hash: flags.hash },
    }), { createIfMissing: true });
    this.say(`${args.file}: added ${flags.variant} ${flags.arch} ${flags.version}; ${manifest.updates.length} update(s)`);
    return manifest;
  }
}
