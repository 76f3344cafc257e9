// thar-be-settings: from changed keys to affected services, their files rendered under the root, then restarts.
import { mkdir, readFile, realpath } from 'node:fs/promises';
import { dirname, relative, resolve } from 'node:path';
import { errnoCode } from '../../core/errors.ts';
import { writeFileAtomic } from '../../core/fs.ts';
import { runHostCommand, type CommandOutcome } from '../commands.ts';
import { parseKey } from '../datastore/key.ts';
import type { Datastore } from '../datastore/store.ts';
import { isJsonObject, type JsonObject } from '../datastore/tree.ts';
import { PathEscapeError, underRoot } from '../paths.ts';

export interface PlannedFile {
  name: string;
  path: string;
  templatePath: string;
  mode: number;
  outputFile: string;
  templateFile: string;
}

export interface PlannedService {
  name: string;
  files: string[];
  restartCommands: string[];
}

export interface ApplyPlan {
  services: PlannedService[];
  files: PlannedFile[];
}

export interface FileResult {
  name: string;
  path: string;
  status: 'written' | 'unchanged' | 'failed' | 'not-written';
  error?: string;
}

export interface ServiceResult {
  name: string;
  commands: CommandOutcome[];
}

export interface ApplyReport {
  id: number;
  /** Changed keys that drove this apply, or `all` at boot. */
  keys: string[] | 'all';
  state: 'running' | 'succeeded' | 'failed';
  startedAt: string;
  finishedAt?: string;
  files: FileResult[];
  services: ServiceResult[];
  error?: string;
}

/**
 * Resolves which services and files `keys` affect (`all`: every service). Throws
 * `PathEscapeError` for a file whose path or template path would leave the root.
 */
export function planApply(store: Datastore, root: string, keys: readonly string[] | 'all'): ApplyPlan {
  const services = store.document(['services']);
  const configFiles = store.document(['configuration-files']);
  const names = new Set<string>();
  if (keys === 'all') {
    for (const name of Object.keys(services)) names.add(name);
  } else {
    for (const key of keys) {
      const affected = store.inheritedMetadata('affected-services', parseKey(key));
      for (const name of Array.isArray(affected) ? affected : []) if (typeof name === 'string') names.add(name);
    }
  }
  const planned: PlannedService[] = [];
  const files = new Map<string, PlannedFile>();
  for (const name of [...names].sort()) {
    const service = services[name];
    if (!isJsonObject(service)) continue;
    const fileNames = stringList(service['configuration-files']);
    planned.push({ name, files: fileNames, restartCommands: stringList(service['restart-commands']) });
    for (const fileName of fileNames) {
      const file = configFiles[fileName];
      if (files.has(fileName) || !isJsonObject(file)) continue;
      const path = String(file.path ?? '');
      const templatePath = String(file['template-path'] ?? '');
      files.set(fileName, {
        name: fileName,
        path,
        templatePath,
        mode: typeof file.mode === 'string' ? Number.parseInt(file.mode, 8) : 0o644,
        outputFile: underRoot(root, path, `configuration file '${fileName}' path`),
        templateFile: underRoot(root, templatePath, `configuration file '${fileName}' template-path`),
      });
    }
  }
  return { services: planned, files: [...files.values()] };
}

function stringList(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((item): item is string => typeof item === 'string') : [];
}

export interface ApplyOptions {
  root: string;
  os: JsonObject;
  /** Keys mode renders strictly (one failure aborts every write); `all` (boot) skips failures. */
  strict: boolean;
  changedKeys: readonly string[];
}

/** Renders the plan's files, writes them atomically, then runs each service's restart commands in order. */
export async function executePlan(
  store: Datastore,
  plan: ApplyPlan,
  options: ApplyOptions,
  report: ApplyReport,
): Promise<void> {
  const settings = store.document(['settings']);
  const rendered: { file: PlannedFile; content: string }[] = [];
  for (const file of plan.files) {
    try {
      rendered.push({ file, content: await renderFile(file, settings, options) });
    } catch (error) {
      report.files.push({ name: file.name, path: file.path, status: 'failed', error: (error as Error).message });
    }
  }
  if (options.strict && report.files.length > 0) {
    for (const { file } of rendered) report.files.push({ name: file.name, path: file.path, status: 'not-written' });
    report.error = 'rendering failed; no file was written and no service restarted';
    return;
  }
  let systemdChanged = false;
  for (const { file, content } of rendered) {
    try {
      const status = await writeRendered(file, content, options.root);
      if (status === 'written' && file.path.startsWith('/etc/systemd/')) systemdChanged = true;
      report.files.push({ name: file.name, path: file.path, status });
    } catch (error) {
      report.files.push({ name: file.name, path: file.path, status: 'failed', error: (error as Error).message });
    }
  }
  const env = { ...process.env, CHANGED_SETTINGS: options.changedKeys.join(' ') };
  if (options.strict && systemdChanged) {
    report.services.push({
      name: 'systemd',
      commands: [await runHostCommand(['/bin/systemctl', 'daemon-reload'], { root: options.root, env })],
    });
  }
  for (const service of plan.services) {
    const result: ServiceResult = { name: service.name, commands: [] };
    report.services.push(result);
    for (const command of service.restartCommands) {
      const outcome = await runHostCommand(command.split(' '), { root: options.root, env });
      result.commands.push(outcome);
      if (outcome.status === 'failed') break;
    }
  }
}

/** Whether an apply report holds a failure (a skipped command is not one). */
export function applyFailed(report: ApplyReport): boolean {
  return (
    report.error !== undefined ||
    report.files.some((file) => file.status === 'failed') ||
    report.services.some((service) => service.commands.some((command) => command.status === 'failed'))
  );
}

async function renderFile(file: PlannedFile, settings: JsonObject, options: ApplyOptions): Promise<string> {
  await refuseSymlinkEscape(options.root, file.templateFile, `template-path '${file.templatePath}'`);
  let text: string;
  try {
    text = await readFile(file.templateFile, 'utf8');
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') throw new Error(`template ${file.templatePath} does not exist in the root`);
    throw error;
  }
  // Handlebars is most of the API server's code: it loads with the first render, not at startup.
  const { parseTemplate, renderTemplate } = await import('./template.ts');
  const template = parseTemplate(text, file.templatePath);
  return renderTemplate(template, settings, options.os, file.templatePath);
}

async function writeRendered(file: PlannedFile, content: string, root: string): Promise<'written' | 'unchanged'> {
  await mkdir(dirname(file.outputFile), { recursive: true });
  await refuseSymlinkEscape(root, file.outputFile, `path '${file.path}'`);
  try {
    if ((await readFile(file.outputFile, 'utf8')) === content) return 'unchanged';
  } catch (error) {
    if (errnoCode(error) !== 'ENOENT') throw error;
  }
  await writeFileAtomic(file.outputFile, content, { mode: file.mode });
  return 'written';
}

/** A symlink inside the root may still point out of it; the real directory must stay inside. */
async function refuseSymlinkEscape(root: string, path: string, what: string): Promise<void> {
  let real: string;
  try {
    real = await realpath(dirname(path));
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return;
    throw error;
  }
  const realRoot = await realpath(resolve(root));
  const inside = relative(realRoot, real);
  if (inside.startsWith('..') || resolve(realRoot, inside) !== real) {
    throw new PathEscapeError(`${what} resolves to ${real}, outside the root ${realRoot}`);
  }
}
