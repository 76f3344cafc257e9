import { Flags } from '@oclif/core';
import { BRL_UPDOG } from '../../lib/host/apiserver/updates.ts';
import { BrlCommand } from '../../lib/cli/base-command.ts';
import { BrlError, ExitCode } from '../../lib/core/errors.ts';
import { SocketInUseError } from '../../lib/host/apiserver/server.ts';
import { bootHost, type BootResult } from '../../lib/host/boot/boot.ts';
import { UserDataError } from '../../lib/host/boot/early-boot-config.ts';
import { GeneratorError } from '../../lib/host/boot/generators.ts';
import { MigrationError } from '../../lib/host/boot/migrator.ts';
import { OsReleaseError } from '../../lib/host/os-release.ts';
import { SettingsValidationError } from '../../lib/host/settings/schema.ts';
import { serveUntilSignal } from '../../lib/host/serve.ts';

/** Failures caused by the root's inputs (user data, migrations, generators, a busy socket) are the user's to fix. */
function asUserError(error: unknown): unknown {
  if (error instanceof UserDataError) {
    return new BrlError(error.message, { hint: 'fix the user data TOML (it needs a [settings] table)', exitCode: ExitCode.badInput, code: 'BAD_USER_DATA' });
  }
  if (error instanceof MigrationError || error instanceof GeneratorError) {
    return new BrlError(error.message, { exitCode: ExitCode.failure, code: error.name === 'MigrationError' ? 'MIGRATION_FAILED' : 'GENERATOR_FAILED' });
  }
  if (error instanceof SocketInUseError) {
    return new BrlError(error.message, { hint: 'stop the other apiserver first', exitCode: ExitCode.conflict, code: 'SOCKET_IN_USE' });
  }
  if (error instanceof OsReleaseError) {
    return new BrlError(error.message, { hint: 'make a root first: brl host init --root DIR --variant dev', exitCode: ExitCode.notFound, code: 'NO_OS_RELEASE' });
  }
  if (error instanceof SettingsValidationError) {
    return new BrlError(`settings defaults: ${error.message}`, { exitCode: ExitCode.badInput, code: 'BAD_DEFAULTS' });
  }
  return error;
}

export default class HostBoot extends BrlCommand<BootResult> {
  static override summary = 'Run the host boot sequence on a root, then keep serving the API.';
  static override description =
    'migrator (datastore to the os-release version), storewolf (create, wipe pending, seed defaults), apiserver, early-boot-config (user data, first boot only), setting generators, commit, render every configuration file, and signpost mark-successful-boot when --disk is given. Serves the API until interrupted unless --exit.';
  static override examples = [
    '<%= config.bin %> host boot --root build/dev-root',
    '<%= config.bin %> host boot --root build/dev-root --user-data user-data.toml --exit',
    '<%= config.bin %> host boot --root / --disk /dev/nvme0n1 --user-data http://169.254.169.254/latest/user-data',
  ];

  static override flags = {
    root: Flags.string({ description: 'host root the fixed paths live under', required: true }),
    disk: Flags.string({ description: 'OS disk to mark as successfully booted' }),
    'user-data': Flags.string({ description: 'user data TOML: a file or an IMDS-style http(s):// URL' }),
    socket: Flags.string({ description: 'API socket path (default <root>/run/api.sock)' }),
    'socket-gid': Flags.integer({ description: 'group that owns the socket', min: 0 }),
    updog: Flags.string({ description: 'updog command for update actions (default: brl\'s bin/updog)', default: BRL_UPDOG }),
    exit: Flags.boolean({ description: 'stop the API after booting instead of serving' }),
  };

  async run(): Promise<BootResult> {
    const { flags } = await this.parse(HostBoot);
    const { result, server } = await bootHost({
      root: flags.root,
      updogCommand: flags.updog.split(' '),
      onStep: (step, detail) => this.say(`${step.padEnd(20)} ${detail}`),
      ...(flags.disk === undefined ? {} : { disk: flags.disk }),
      ...(flags['user-data'] === undefined ? {} : { userData: flags['user-data'] }),
      ...(flags.socket === undefined ? {} : { socketPath: flags.socket }),
      ...(flags['socket-gid'] === undefined ? {} : { socketGid: flags['socket-gid'] }),
    }).catch((error: unknown) => {
      throw asUserError(error);
    });
    for (const file of result.apply.files.filter((entry) => entry.status === 'failed')) {
      this.say(`  ${file.path}: ${file.error}`);
    }
    if (flags.exit) {
      await server.close();
      return result;
    }
    if (this.jsonEnabled()) process.stdout.write(`${JSON.stringify(result)}\n`);
    this.say(`serving the API on ${server.socketPath} (Ctrl-C to stop)`);
    await serveUntilSignal(server);
    return result;
  }
}
