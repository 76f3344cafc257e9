import { Args } from '@oclif/core';
import { BrlCommand } from '../../../lib/cli/base-command.ts';
import { editRootFile, setRootExpires, type RootEditResult } from '../../../lib/repo/root-file.ts';
import { formatExpires, nowSeconds, parseTimeSpec } from '../../../lib/tuf/time.ts';

export default class RootExpire extends BrlCommand<RootEditResult & { expires: string }> {
  static override summary = 'Set when a root.json expires.';
  static override description = 'Takes an RFC 3339 time or an offset such as "in 52 weeks". Editing a fully signed root starts its next version (the signed one is kept as N.<file>).';
  static override examples = [
    '<%= config.bin %> repo root expire roles/default.root.json "in 52 weeks"',
    '<%= config.bin %> repo root expire roles/default.root.json 2027-12-01T00:00:00Z',
  ];

  static override args = {
    root: Args.string({ description: 'root.json to edit', required: true }),
    time: Args.string({ description: 'RFC 3339 time or "in N days|weeks"', required: true }),
  };

  async run(): Promise<RootEditResult & { expires: string }> {
    const { args } = await this.parse(RootExpire);
    const expiresAt = parseTimeSpec(args.time, nowSeconds(), 'expiry');
    const result = await editRootFile(args.root, (signed) => setRootExpires(signed, expiresAt));
    if (result.archivedPath) this.say(`kept signed version ${result.archivedVersion} as ${result.archivedPath}`);
    this.say(`${args.root} v${result.version} expires ${formatExpires(expiresAt)} (unsigned until brl repo root sign)`);
    return { ...result, expires: formatExpires(expiresAt) };
  }
}
