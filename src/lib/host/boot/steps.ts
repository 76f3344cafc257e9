// The boot sequence one step per process, as systemd runs it (one unit per step, host-api.md §1):
// `host-boot <step>`. bootHost() in boot.ts runs the same steps in one process for development roots.
// Each step imports only its own modules: the host bundles are split into chunks, so a step's process
// parses what that step runs (a Node.js start is seconds under emulation, most of it parsing).
import { apiCall, apiRequest } from '../apiclient/request.ts';
import { readOsInfo } from '../os-release.ts';
import { hostPaths } from '../paths.ts';
import type { ApplyReport } from '../render/apply.ts';
import { commitLaunch } from './commit-launch.ts';

export const bootSteps = ['prepare-local', 'migrator', 'storewolf', 'early-boot-config', 'sundog', 'settings-applier'] as const;
export type BootStep = (typeof bootSteps)[number];

export function isBootStep(name: string): name is BootStep {
  return (bootSteps as readonly string[]).includes(name);
}

export interface StepOptions {
  root: string;
  socketPath?: string;
  userData?: string;
  log: (line: string) => void;
  /** How long settings-applier waits for the API's renderer. */
  applyTimeoutMs?: number;
}

/** Runs one step; throws with a message for the journal when the step fails. */
export async function runBootStep(step: BootStep, options: StepOptions): Promise<void> {
  const paths = hostPaths(options.root);
  const socket = options.socketPath ?? paths.socket;
  const { log } = options;
  switch (step) {
    case 'prepare-local': {
      const { prepareLocal } = await import('./prepare-local.ts');
      await prepareLocal({ log });
      return;
    }
    case 'migrator': {
      const { runMigrator } = await import('./migrator.ts');
      const os = await readOsInfo(paths.osRelease);
      const result = await runMigrator(paths, os.version_id);
      log(result.direction === 'none' ? `datastore at ${os.version_id}` : `${result.from} → ${result.to} (${result.applied.length} migrations)`);
      return;
    }
    case 'storewolf': {
      const [{ runStorewolf }, { SettingsModel }] = await Promise.all([import('./storewolf.ts'), import('../settings/model.ts')]);
      const os = await readOsInfo(paths.osRelease);
      const result = await runStorewolf(paths, os.version_id, await SettingsModel.load(paths.root));
      log(`${result.created ? 'created the datastore; ' : ''}${result.pendingSettings.length} default settings pending`);
      return;
    }
    case 'early-boot-config': {
      const { runEarlyBootConfig } = await import('./early-boot-config.ts');
      const result = await runEarlyBootConfig(paths, socket, options.userData);
      log(result.ran ? `applied: ${result.providers.filter((provider) => provider.applied).map((provider) => provider.name).join(', ') || 'no user data'}` : 'already ran on an earlier boot');
      return;
    }
    case 'sundog': {
      const { runGenerators } = await import('./generators.ts');
      const committed = await commitLaunch(socket);
      const generated = await runGenerators(socket, paths.root);
      log(`${committed.length} keys committed; ${generated.filter((generator) => generator.status === 'generated').length} settings generated`);
      return;
    }
    case 'settings-applier': {
      const committed = await commitLaunch(socket);
      const report = await applyAll(socket, options.applyTimeoutMs ?? 120_000);
      const failed = report.files.filter((file) => file.status === 'failed');
      log(`${committed.length} keys committed; ${report.files.filter((file) => file.status === 'written').length} files written, ${failed.length} failed`);
      if (report.state === 'failed') throw new Error(`rendering failed: ${failed.map((file) => `${file.path}: ${file.error}`).join('; ') || 'see GET /apply-status'}`);
      return;
    }
  }
}

/** POST /tx/apply (every file), then waits for the API's renderer to finish that run. */
async function applyAll(socket: string, timeoutMs: number): Promise<ApplyReport> {
  const before = JSON.parse(await apiCall(socket, 'GET', '/apply-status')) as ApplyReport[];
  const lastId = Math.max(0, ...before.map((report) => report.id));
  await apiCall(socket, 'POST', '/tx/apply');
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const response = await apiRequest(socket, 'GET', '/apply-status');
    const ours = (JSON.parse(response.body) as ApplyReport[]).find((report) => report.id > lastId && report.keys === 'all');
    if (ours !== undefined && ours.state !== 'running') return ours;
    if (Date.now() > deadline) throw new Error(`the API did not finish rendering within ${timeoutMs / 1000} s`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
