import { Args, Flags } from '@oclif/core';
import { BrlCommand } from '../../../lib/cli/base-command.ts';
import { editManifestFile } from '../../../lib/repo/manifest-file.ts';
import { builtinWavePolicies, resolveWavePolicy } from '../../../lib/repo/policy.ts';
import { nowSeconds, parseTimeSpec } from '../../../lib/tuf/time.ts';
import { setWaves, type Manifest } from '../../../lib/update-metadata/index.ts';

export default class ManifestSetWaves extends BrlCommand<Manifest> {
  static override summary = 'Set an update\'s waves from a wave policy.';
  static override description = 'Each [[waves]] entry\'s start_after (an offset from --start-at, or an absolute time) becomes the time its first seed may update; seeds are floor(cumulative % / 100 × 2048).';
  static override examples = [
    '<%= config.bin %> repo manifest set-waves manifest.json --variant dev --arch x86_64 --version 1.1.0 --wave-policy accelerated',
    '<%= config.bin %> repo manifest set-waves manifest.json -l dev -a x86_64 -v 1.1.0 -w waves.toml --start-at 2026-12-01T09:00:00Z',
  ];

  static override args = { file: Args.string({ description: 'manifest.json', required: true }) };
  static override flags = {
    variant: Flags.string({ char: 'l', description: 'variant', required: true }),
    arch: Flags.string({ char: 'a', description: 'architecture', required: true }),
    version: Flags.string({ char: 'v', description: 'image version', required: true }),
    'wave-policy': Flags.string({ char: 'w', aliases: ['wave-file'], description: `built-in policy (${Object.keys(builtinWavePolicies).join(', ')}) or a [[waves]] TOML file`, required: true }),
    'start-at': Flags.string({ description: 'release start: RFC 3339 or "in N hours" (default: now)', env: 'RELEASE_START_TIME' }),
  };

  async run(): Promise<Manifest> {
    const { args, flags } = await this.parse(ManifestSetWaves);
    const now = nowSeconds();
    const start = flags['start-at'] ? parseTimeSpec(flags['start-at'], now, '--start-at') : now;
    const policy = await resolveWavePolicy(flags['wave-policy']);
    const key = { variant: flags.variant, arch: flags.arch, version: flags.version };
    const manifest = await editManifestFile(args.file, (current) => setWaves(current, key, policy, start * 1000));
    this.say(`${args.file}: ${flags.variant} ${flags.arch} ${flags.version} now rolls out in ${policy.length} wave(s)`);
    return manifest;
  }
}
