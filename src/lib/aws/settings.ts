// Settings every AWS command resolves the same way: the project (optional), Infra.toml's [aws], the regions.
import { isBrlError } from '../core/errors.ts';
import { findProjectDir } from '../core/paths.ts';
import { infraPath, loadAwsInfra, resolveRegions, splitList, type AwsInfra } from './infra.ts';

export interface AwsSettings {
  projectDir: string | undefined;
  infra: AwsInfra;
  /** `--regions` as given, undefined when not given. */
  regionsFlag: string[] | undefined;
  /** Regions to work in: the flag, else Infra.toml, else the SDK's default region. */
  regions: () => Promise<string[]>;
}

export async function loadAwsSettings(flags: { regions?: string | undefined; 'infra-config'?: string | undefined }): Promise<AwsSettings> {
  let projectDir: string | undefined;
  try {
    projectDir = findProjectDir();
  } catch (error) {
    if (!isBrlError(error) || error.code !== 'NO_PROJECT') throw error;
  }
  const infra = await loadAwsInfra(infraPath(projectDir, flags['infra-config']));
  const regionsFlag = splitList(flags.regions);
  return { projectDir, infra, regionsFlag, regions: () => resolveRegions(regionsFlag, infra) };
}
