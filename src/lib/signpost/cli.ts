// The `signpost` host program's command line (no oclif): parse, run one command, print, exit code.
import { parseArgs } from 'node:util';
import { isBrlError } from '../core/errors.ts';
import { nextBoot, runSignpostCommand, signpostHasBootEverSucceeded, signpostStatus, type SignpostStatus } from './signpost.ts';
import { signpostCommands, type SignpostCommand } from './transitions.ts';

export interface CliIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
}

export const SIGNPOST_USAGE = `Usage: signpost <COMMAND> [--root DIR] [--disk PATH] [--json]

Commands:
  status                   show the disk's partition sets, their flags, the active and next set
  clear-inactive           inactive set: priority 0, tries 0, not successful
  mark-inactive-valid      inactive set: tries 1 (a complete image is on it)
  upgrade-to-inactive      boot the inactive set next (priority 2), keep the active set as fallback
  cancel-upgrade           undo upgrade-to-inactive before rebooting
  rollback-to-inactive     boot the previous set next, if it can still boot
  mark-successful-boot     mark the running set as booted successfully
  has-boot-ever-succeeded  print "true" if any boot of this disk ever succeeded
  rewrite-table            rewrite the partition table unchanged (testing)
  next-boot                model GRUB's gptprio.next on a disk image: choose, use a try, record it

Options:
  --root DIR   host root directory (default /)
  --disk PATH  OS disk: block device or disk image file (default: the disk the host booted from)
  --json       print the resulting state as JSON
`;

export function formatStatus(status: SignpostStatus): string {
  const lines = [`Disk: ${status.disk}`];
  for (const set of status.sets) {
    const { priority, triesLeft, successful } = set.flags;
    lines.push(`Set ${set.label}${set.active ? ' (active)' : ''}:`);
    for (const role of ['boot', 'root', 'hash'] as const) {
      const part = set[role];
      lines.push(`  ${role.toUpperCase().padEnd(4)} partition ${part.number} PARTUUID ${part.partUuid} at ${part.offsetBytes} (${part.sizeBytes} bytes)`);
    }
    lines.push(`  priority ${priority}, tries left ${triesLeft}, successful ${successful}, will boot ${set.willBoot}`);
  }
  lines.push(`Active set: ${status.activeSet}`, `Next set: ${status.nextSet ?? 'none (nothing bootable)'}`);
  return `${lines.join('\n')}\n`;
}

export async function signpostMain(argv: string[], io: CliIo): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: { root: { type: 'string', default: '/' }, disk: { type: 'string' }, json: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h' } },
    });
  } catch (error) {
    io.stderr(`${(error as Error).message}\n\n${SIGNPOST_USAGE}`);
    return 1;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    io.stdout(SIGNPOST_USAGE);
    return 0;
  }
  const command = positionals[0];
  const known = [...signpostCommands, 'status', 'has-boot-ever-succeeded', 'next-boot'];
  if (positionals.length !== 1 || command === undefined || !known.includes(command)) {
    io.stderr(`${positionals.length === 0 ? 'missing command' : `unknown command: ${positionals.join(' ')}`}\n\n${SIGNPOST_USAGE}`);
    return 1;
  }
  const host = { root: values.root, ...(values.disk === undefined ? {} : { disk: values.disk }) };
  const print = (status: SignpostStatus): void => {
    if (values.json) io.stdout(`${JSON.stringify(status, null, 2)}\n`);
    else if (command === 'status' || command === 'next-boot') io.stdout(formatStatus(status));
  };
  try {
    if (command === 'status') {
      print(await signpostStatus(host));
    } else if (command === 'has-boot-ever-succeeded') {
      const succeeded = await signpostHasBootEverSucceeded(host);
      if (values.json) io.stdout(`${JSON.stringify({ hasBootEverSucceeded: succeeded })}\n`);
      else if (succeeded) io.stdout('true\n');
    } else if (command === 'next-boot') {
      if (host.disk === undefined) {
        io.stderr('next-boot needs --disk (a disk image) and --root (a scratch host root)\n');
        return 1;
      }
      const result = await nextBoot({ root: host.root, disk: host.disk });
      if (!values.json) io.stderr(`GRUB boots set ${result.booted}${result.triesDecremented ? ' (one try used)' : ''}\n`);
      print(result);
    } else {
      print(await runSignpostCommand(host, command as SignpostCommand));
    }
    return 0;
  } catch (error) {
    if (!isBrlError(error)) throw error;
    io.stderr(`signpost: ${error.message}\n${error.hint === undefined ? '' : `hint: ${error.hint}\n`}`);
    return 1;
  }
}
