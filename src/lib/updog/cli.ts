// The `updog` host program's command line (no oclif), compatible with upstream updog's.
import { parseArgs } from 'node:util';
import { isBrlError } from '../core/errors.ts';
import type { Update } from '../update-metadata/manifest.ts';
import { applyStagedUpdate, applyUpdate, checkUpdate, logLevels, reboot, revertUpdate, type LogLevel, type UpdogOptions } from './updog.ts';

export interface CliIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
}

export const UPDOG_USAGE = `Usage: updog <SUBCOMMAND> [OPTIONS]

Subcommands:
  check-update    print the update this host would take (alias: whats)
  update          download and write the update to the inactive partitions, then boot them next
  update-image    download and write the update, without changing which partitions boot
  update-apply    boot the staged update next
  update-revert   undo update-apply
  prepare         accepted for compatibility; does nothing

Options:
  -i, --image VERSION            update to this version (plain semver, may be a downgrade)
  -n, --now, --ignore-waves      ignore wave scheduling
  -a, --all                      with check-update: list every applicable update
  -r, --reboot                   reboot after update / update-apply
  -j, --json                     JSON output
      --log-level LEVEL          trace, debug, info, warn or error (default info)
      --root DIR                 host root directory (default /)
      --disk PATH                OS disk (default: the disk the host booted from)
`;

const subcommands = ['check-update', 'whats', 'update', 'update-image', 'update-apply', 'update-revert', 'prepare'] as const;

function updateJson(update: Update): string {
  return JSON.stringify({ variant: update.variant, arch: update.arch, version: update.version, max_version: update.max_version, waves: update.waves, images: update.images }, null, 2);
}

export async function updogMain(argv: string[], io: CliIo): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        image: { type: 'string', short: 'i' },
        now: { type: 'boolean', short: 'n', default: false },
        'ignore-waves': { type: 'boolean', default: false },
        all: { type: 'boolean', short: 'a', default: false },
        reboot: { type: 'boolean', short: 'r', default: false },
        json: { type: 'boolean', short: 'j', default: false },
        'log-level': { type: 'string', default: 'info' },
        variant: { type: 'string' },
        root: { type: 'string', default: '/' },
        disk: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (error) {
    io.stderr(`${(error as Error).message}\n\n${UPDOG_USAGE}`);
    return 1;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    io.stdout(UPDOG_USAGE);
    return 0;
  }
  const subcommand = positionals[0] as (typeof subcommands)[number] | undefined;
  if (positionals.length !== 1 || subcommand === undefined || !subcommands.includes(subcommand)) {
    io.stderr(`${positionals.length === 0 ? 'missing subcommand' : `unknown subcommand: ${positionals.join(' ')}`}\n\n${UPDOG_USAGE}`);
    return 1;
  }
  const level = values['log-level'] as LogLevel;
  if (!logLevels.includes(level)) {
    io.stderr(`--log-level must be one of ${logLevels.join(', ')}\n\n${UPDOG_USAGE}`);
    return 1;
  }
  const threshold = logLevels.indexOf(level);
  const options: UpdogOptions = {
    root: values.root,
    ignoreWaves: values.now || values['ignore-waves'],
    log: (messageLevel, message) => {
      if (logLevels.indexOf(messageLevel) >= threshold) io.stderr(messageLevel === 'info' ? `${message}\n` : `${messageLevel.toUpperCase()} ${message}\n`);
    },
    ...(values.disk === undefined ? {} : { disk: values.disk }),
    ...(values.image === undefined ? {} : { image: values.image }),
    ...(values.variant === undefined ? {} : { variant: values.variant }),
  };
  try {
    switch (subcommand) {
      case 'prepare':
        return 0;
      case 'check-update':
      case 'whats': {
        const { chosen, applicable } = await checkUpdate(options);
        if (values.all) {
          if (values.json) io.stdout(`${JSON.stringify(applicable.map((update) => JSON.parse(updateJson(update)) as unknown), null, 2)}\n`);
          else for (const update of applicable) io.stderr(`${update.variant} ${update.version}\n`);
          return 0;
        }
        if (!chosen) {
          io.stderr('No update available\n');
          return 1;
        }
        io.stdout(values.json ? `${updateJson(chosen)}\n` : `${chosen.variant} ${chosen.version}\n`);
        return 0;
      }
      case 'update':
      case 'update-image': {
        const started = performance.now();
        const result = await applyUpdate({ ...options, activate: subcommand === 'update' });
        if (!result.update) {
          io.stderr('No update required\n');
          return 0;
        }
        // What an operator sizes hosts by: how long it took and the most memory updog held.
        const written = Object.values(result.bytesWritten ?? {}).reduce((sum, bytes) => sum + bytes, 0);
        options.log?.('info', `Wrote ${(written / 1048576).toFixed(1)} MiB of ${result.update.version} into the inactive set in ${((performance.now() - started) / 1000).toFixed(1)} s, peak RSS ${Math.round(process.resourceUsage().maxRSS / 1024)} MiB`);
        io.stdout(values.json ? `${updateJson(result.update)}\n` : `Update applied: ${result.update.variant} ${result.update.version}\n`);
        if (values.reboot && subcommand === 'update') await reboot();
        return 0;
      }
      case 'update-apply':
        await applyStagedUpdate(options);
        if (values.reboot) await reboot();
        return 0;
      case 'update-revert':
        await revertUpdate(options);
        return 0;
    }
  } catch (error) {
    if (!isBrlError(error)) throw error;
    io.stderr(`updog: ${error.message}\n${error.hint === undefined ? '' : `hint: ${error.hint}\n`}`);
    return 1;
  }
}
