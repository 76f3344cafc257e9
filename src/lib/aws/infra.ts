// The `[aws]` table of Infra.toml: regions (the first is the base region), ssm_prefix and per-region roles.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { BrlError, ExitCode } from '../core/errors.ts';
import { loadToml, readString, readStringArray, readTable, rejectUnknownKeys, tomlKeyError } from '../core/toml.ts';
import { defaultRegion } from './clients.ts';

export interface AwsInfra {
  regions: string[];
  ssmPrefix: string | undefined;
  /** Role ARN per region; its account gets launch and create-volume permission on published AMIs. */
  regionRoles: Record<string, string>;
}

const regionPattern = /^[a-z]{2}(-[a-z]+)+-\d+$/;

/** Reads `[aws]` from the given Infra.toml, or `<project>/Infra.toml` when it exists; missing means empty. */
export async function loadAwsInfra(path: string | undefined): Promise<AwsInfra> {
  const empty: AwsInfra = { regions: [], ssmPrefix: undefined, regionRoles: {} };
  if (path === undefined || !existsSync(path)) return empty;
  const doc = await loadToml(path);
  const aws = readTable(doc, doc.data, 'aws');
  if (!aws) return empty;
  rejectUnknownKeys(doc, aws, ['regions', 'ssm_prefix', 'region'], 'aws.');
  const regions = readStringArray(doc, aws, 'regions', 'aws.') ?? [];
  for (const region of regions) {
    if (!regionPattern.test(region)) throw tomlKeyError(doc, 'aws.regions', `"${region}" is not a region name like us-west-2`);
  }
  const regionRoles: Record<string, string> = {};
  const regionTables = readTable(doc, aws, 'region', 'aws.') ?? {};
  for (const region of Object.keys(regionTables)) {
    const table = readTable(doc, regionTables, region, 'aws.region.') ?? {};
    rejectUnknownKeys(doc, table, ['role'], `aws.region.${region}.`);
    const role = readString(doc, table, 'role', `aws.region.${region}.`);
    if (role !== undefined) {
      if (accountOfRoleArn(role) === undefined) throw tomlKeyError(doc, `aws.region.${region}.role`, `"${role}" is not an IAM role ARN`);
      regionRoles[region] = role;
    }
  }
  return { regions, ssmPrefix: readString(doc, aws, 'ssm_prefix', 'aws.'), regionRoles };
}

export function infraPath(projectDir: string | undefined, flag: string | undefined): string | undefined {
  return flag ?? (projectDir === undefined ? undefined : join(projectDir, 'Infra.toml'));
}

/** An IAM role ARN names its account, so it need not be assumed just to learn it. */
export function accountOfRoleArn(arn: string): string | undefined {
  return /^arn:aws[a-z-]*:iam::(\d{12}):role\/.+$/.exec(arn)?.[1];
}

/** `--regions` wins, then Infra.toml, then the SDK's default region; the first is the base region. */
export async function resolveRegions(flag: string[] | undefined, infra: AwsInfra): Promise<string[]> {
  const regions = flag && flag.length > 0 ? flag : infra.regions.length > 0 ? infra.regions : [await defaultRegion()];
  for (const region of regions) {
    if (!regionPattern.test(region)) {
      throw new BrlError(`"${region}" is not a region name like us-west-2`, { exitCode: ExitCode.usage, code: 'BAD_REGION' });
    }
  }
  return [...new Set(regions)];
}

export function splitList(value: string | undefined): string[] | undefined {
  return value === undefined ? undefined : value.split(',').map((item) => item.trim()).filter((item) => item !== '');
}
