import { Args, Flags } from '@oclif/core';
import { BrlCommand } from '../../../lib/cli/base-command.ts';
import { BrlError, ExitCode } from '../../../lib/core/errors.ts';
import { signRootFile, type RootSignResult } from '../../../lib/repo/root-file.ts';
import { openSigner, parseKeySource } from '../../../lib/signing/key-source.ts';

export default class RootSign extends BrlCommand<RootSignResult> {
  static override summary = 'Sign a root.json (several people may sign in turn).';
  static override description = [
    'Each key must be a root key of this version or, for a rotation, of the previous version (kept beside the file as N.<file>); other keys are refused before anything is signed.',
    'A rotated root is complete when a threshold of the old root keys and a threshold of its own have signed it.',
  ].join('\n\n');

  static override examples = [
    '<%= config.bin %> repo root sign roles/default.root.json --key keys/default.pem',
    '<%= config.bin %> repo root sign roles/default.root.json --key keys/old-root.pem --key keys/new-root.pem',
  ];

  static override args = { root: Args.string({ description: 'root.json to sign', required: true }) };
  static override flags = {
    key: Flags.string({ char: 'k', description: 'signing key: PEM file, aws-kms://[profile]/KEY-ID or aws-ssm://[profile]/PARAMETER (repeatable)', multiple: true, required: true }),
    'require-complete': Flags.boolean({ description: 'fail unless every threshold is met afterwards' }),
  };

  async run(): Promise<RootSignResult> {
    const { args, flags } = await this.parse(RootSign);
    const signers = await Promise.all(flags.key.map((key) => openSigner(parseKeySource(key))));
    const result = await signRootFile(args.root, signers);
    this.say(`${args.root} v${result.version}: ${result.own.signedBy}/${result.own.threshold} root signatures`);
    if (result.previous) this.say(`previous root v${result.version - 1}: ${result.previous.signedBy}/${result.previous.threshold} of its root keys signed this rotation`);
    this.say(result.complete ? 'complete: ready to publish' : 'incomplete: more signatures are needed before publishing');
    if (flags['require-complete'] && !result.complete) {
      throw new BrlError(`${args.root} v${result.version} does not meet its signature thresholds yet`, {
        hint: 'sign with more root keys (brl repo root sign --key …)',
        exitCode: ExitCode.verifyFailed,
        code: 'THRESHOLD_NOT_MET',
      });
    }
    return result;
  }
}
