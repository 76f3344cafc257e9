// The boot sequence in systemd's order: migrator, storewolf, apiserver, early-boot-config, sundog, settings-applier, signpost.
import { ApiServer, type ApiServerOptions } from '../apiserver/server.ts';
import { readOsInfo } from '../os-release.ts';
import { hostPaths } from '../paths.ts';
import type { ApplyReport } from '../render/apply.ts';
import { SettingsModel } from '../settings/model.ts';
import { runSignpostCommand } from '../../signpost/signpost.ts';
import { runEarlyBootConfig, type EarlyBootConfigResult } from './early-boot-config.ts';
import { runGenerators, type GeneratorResult } from './generators.ts';
import { runMigrator, type MigratorResult } from './migrator.ts';
import { commitLaunch } from './commit-launch.ts';
import { runStorewolf, type StorewolfResult } from './storewolf.ts';

export interface BootOptions extends Omit<ApiServerOptions, 'root'> {
  root: string;
  /** OS disk: after a good boot, signpost marks it successful. */
  disk?: string;
  /** User data: a TOML file path or an IMDS-style `http(s)://` URL. */
  userData?: string;
  /** Called as each step finishes, for progress output. */
  onStep?: (step: string, detail: string) => void;
}

export interface BootResult {
  version: string;
  migrator: MigratorResult;
  storewolf: StorewolfResult;
  earlyBootConfig: EarlyBootConfigResult;
  committed: string[];
  generators: GeneratorResult[];
  apply: ApplyReport;
  signpost: 'marked-successful' | 'no-disk';
}

/** Runs every step; the returned server keeps serving the API until closed. */
export async function bootHost(options: BootOptions): Promise<{ result: BootResult; server: ApiServer }> {
  const { disk, userData, onStep, ...serverOptions } = options;
  const step = onStep ?? (() => undefined);
  const paths = hostPaths(options.root);
  const os = await readOsInfo(paths.osRelease);
  const model = await SettingsModel.load(paths.root);

  const migrator = await runMigrator(paths, os.version_id);
  step('migrator', migrator.direction === 'none' ? `datastore at ${os.version_id}` : `${migrator.from} → ${migrator.to} (${migrator.applied.length} migrations)`);
  const storewolf = await runStorewolf(paths, os.version_id, model);
  step('storewolf', `${storewolf.created ? 'created the datastore; ' : ''}${storewolf.pendingSettings.length} default settings pending`);

  const server = await ApiServer.start({ ...serverOptions, root: paths.root });
  step('apiserver', `listening on ${server.socketPath}`);
  try {
    const socket = server.socketPath;
    const earlyBootConfig = await runEarlyBootConfig(paths, socket, userData);
    step('early-boot-config', earlyBootConfig.ran ? `${earlyBootConfig.providers.filter((p) => p.applied).length} user data sources applied` : 'already ran on an earlier boot');
    const committed = await commitLaunch(socket);
    const generators = await runGenerators(socket, paths.root);
    step('sundog', `${generators.filter((g) => g.status === 'generated').length} settings generated`);
    committed.push(...(await commitLaunch(socket)));
    step('settings-committer', `${committed.length} keys committed`);
    const apply = server.applier.schedule('all');
    await server.applier.idle();
    step('settings-applier', `${apply.files.filter((f) => f.status === 'written').length} files written, ${apply.files.filter((f) => f.status === 'failed').length} failed`);
    let signpost: BootResult['signpost'] = 'no-disk';
    if (disk !== undefined) {
      await runSignpostCommand({ root: paths.root, disk }, 'mark-successful-boot');
      signpost = 'marked-successful';
      step('mark-successful-boot', disk);
    }
    return {
      result: { version: os.version_id, migrator, storewolf, earlyBootConfig, committed, generators, apply, signpost },
      server,
    };
  } catch (error) {
    await server.close();
    throw error;
  }
}
