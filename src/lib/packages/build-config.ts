// Build settings: `[build]` in brl.toml (other sections belong to other parts of brl).
import { availableParallelism } from 'node:os';
import { BrlError, ExitCode } from '../core/errors.ts';
import { loadProjectConfig } from '../core/project-config.ts';
import { readTable, rejectUnknownKeys, tomlKeyError, type TomlDocument } from '../core/toml.ts';

export const maxBuildJobs = 64;
const buildKeys = ['jobs'];

export interface BuildConfig {
  /** Package builds run at once. */
  jobs: number;
}

/** Defaults, then brl.toml's `[build]`, then `overrides` (command-line flags). */
export async function loadBuildConfig(projectDir: string, overrides: Partial<BuildConfig> = {}): Promise<BuildConfig> {
  const doc = await loadProjectConfig(projectDir);
  const fromFile = doc === undefined ? {} : parseBuildSection(doc);
  const jobs = overrides.jobs ?? fromFile.jobs ?? availableParallelism();
  if (!Number.isInteger(jobs) || jobs < 1 || jobs > maxBuildJobs) {
    throw new BrlError(`--jobs must be an integer from 1 to ${maxBuildJobs}, got ${jobs}`, { exitCode: ExitCode.usage, code: 'BAD_JOBS' });
  }
  return { jobs };
}

export function parseBuildSection(doc: TomlDocument): Partial<BuildConfig> {
  const table = readTable(doc, doc.data, 'build');
  if (table === undefined) return {};
  rejectUnknownKeys(doc, table, buildKeys, 'build.');
  const jobs = table.jobs;
  if (jobs === undefined) return {};
  if (typeof jobs !== 'number' || !Number.isInteger(jobs) || jobs < 1 || jobs > maxBuildJobs) {
    throw tomlKeyError(doc, 'build.jobs', `must be an integer from 1 to ${maxBuildJobs}, got ${JSON.stringify(jobs)}`);
  }
  return { jobs };
}
