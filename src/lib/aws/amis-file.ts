// amis.json (spec §6): the AMI published in each region, its visibility and launch permissions.
import { readFile } from 'node:fs/promises';
import { BrlError, ExitCode, fileError } from '../core/errors.ts';
import { writeJsonAtomic } from '../core/fs.ts';

/** One launch permission, in upstream's single-key object form. */
export type LaunchPermission = { group: string } | { userid: string } | { organizationarn: string } | { organizationalunitarn: string };

export interface RegionAmi {
  id: string;
  name: string;
  public?: boolean;
  launch_permissions?: LaunchPermission[];
}

export type AmisFile = Record<string, RegionAmi>;

const permissionKeys = ['group', 'userid', 'organizationarn', 'organizationalunitarn'];

export async function readAmisFile(path: string): Promise<AmisFile> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw fileError(error, path, { hint: 'pass the amis.json that brl ami publish wrote' }) ?? error;
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (error) {
    throw new BrlError(`${path}: not valid JSON: ${(error as Error).message}`, { exitCode: ExitCode.badInput, code: 'BAD_AMIS_FILE' });
  }
  const bad = (where: string, what: string) => new BrlError(`${path}: ${where}: ${what}`, { exitCode: ExitCode.badInput, code: 'BAD_AMIS_FILE' });
  if (typeof data !== 'object' || data === null || Array.isArray(data)) throw bad('top level', 'must be an object keyed by region');
  // brl ami publish never writes an empty file; granting or publishing nothing would report success for no work.
  if (Object.keys(data).length === 0) throw bad('top level', 'lists no AMIs (expected one entry per region)');
  const amis: AmisFile = {};
  for (const [region, entry] of Object.entries(data as Record<string, unknown>)) {
    if (typeof entry !== 'object' || entry === null) throw bad(region, 'must be an object with id and name');
    const { id, name, public: isPublic, launch_permissions: permissions, ...rest } = entry as Record<string, unknown>;
    if (Object.keys(rest).length > 0) throw bad(region, `unknown key ${Object.keys(rest)[0]}`);
    if (typeof id !== 'string' || !id.startsWith('ami-')) throw bad(`${region}.id`, 'must be an AMI id (ami-…)');
    if (typeof name !== 'string') throw bad(`${region}.name`, 'must be a string');
    if (isPublic !== undefined && typeof isPublic !== 'boolean') throw bad(`${region}.public`, 'must be true or false');
    if (permissions !== undefined) {
      const valid =
        Array.isArray(permissions) &&
        permissions.every((p) => typeof p === 'object' && p !== null && Object.keys(p).length === 1 && permissionKeys.includes(Object.keys(p)[0] as string) && typeof Object.values(p)[0] === 'string');
      if (!valid) throw bad(`${region}.launch_permissions`, `must be a list of single-key objects (${permissionKeys.join(', ')})`);
    }
    amis[region] = {
      id,
      name,
      ...(isPublic === undefined ? {} : { public: isPublic }),
      ...(permissions === undefined ? {} : { launch_permissions: permissions as LaunchPermission[] }),
    };
  }
  return amis;
}

export async function writeAmisFile(path: string, amis: AmisFile): Promise<void> {
  const sorted = Object.fromEntries(Object.keys(amis).sort().map((region) => [region, amis[region]]));
  await writeJsonAtomic(path, sorted);
}
