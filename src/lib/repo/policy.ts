// Expiration policies (how long each role stays valid) and the built-in wave policies.
import { existsSync } from 'node:fs';
import { BrlError, ExitCode } from '../core/errors.ts';
import { readUserText } from '../core/fs.ts';
import { loadToml, readString, rejectUnknownKeys, tomlKeyError } from '../core/toml.ts';
import { parseDuration } from '../tuf/time.ts';
import { parseWavePolicy, type WavePolicyEntry } from '../update-metadata/index.ts';

/** Seconds each role stays valid after the release start. */
export interface ExpirationPolicy {
  snapshot: number;
  targets: number;
  timestamp: number;
}

const week = 7 * 86_400;

/** pubsys's `2w-2w-1w.toml`: a one-week timestamp makes a scheduled refresh mandatory. */
export const defaultExpirationPolicy: ExpirationPolicy = { snapshot: 2 * week, targets: 2 * week, timestamp: week };

export async function loadExpirationPolicy(path: string | undefined): Promise<ExpirationPolicy> {
  if (path === undefined) return defaultExpirationPolicy;
  const doc = await loadToml(path);
  const keys = ['snapshot_expiration', 'targets_expiration', 'timestamp_expiration'];
  rejectUnknownKeys(doc, doc.data, keys);
  const read = (key: string): number => {
    const text = readString(doc, doc.data, key);
    if (text === undefined) throw tomlKeyError(doc, key, 'is required, e.g. "2 weeks"');
    try {
      return parseDuration(text, key);
    } catch (error) {
      if (error instanceof BrlError) throw tomlKeyError(doc, key, error.message);
      throw error;
    }
  };
  return { snapshot: read('snapshot_expiration'), targets: read('targets_expiration'), timestamp: read('timestamp_expiration') };
}

/** bottlerocket-core-kit `sources/updater/waves/`, by name. */
export const builtinWavePolicies: Record<string, string> = {
  default: wavesToml([['1 hour', 1], ['4 hours', 5], ['1 day', 15], ['2 days', 40], ['4 days', 60], ['5 days', 90], ['6 days', 100]]),
  accelerated: wavesToml([['1 hour', 3], ['4 hours', 12], ['8 hours', 40], ['16 hours', 80], ['1 day', 100]]),
  ohno: wavesToml([['30 minutes', 5], ['60 minutes', 25], ['120 minutes', 50], ['150 minutes', 90], ['180 minutes', 100]]),
  'slow-roll': wavesToml([['1 hour', 1], ['1 day', 5], ['3 days', 15], ['7 days', 40], ['9 days', 60], ['12 days', 90], ['13 days', 100]]),
};

function wavesToml(waves: [string, number][]): string {
  return waves.map(([after, percentage]) => `[[waves]]\nstart_after = "${after}"\nfleet_percentage = ${percentage}\n`).join('\n');
}

/** A built-in policy name or a path to a policy TOML file. */
export async function resolveWavePolicy(nameOrPath: string): Promise<WavePolicyEntry[]> {
  const builtin = builtinWavePolicies[nameOrPath];
  if (builtin !== undefined) return parseWavePolicy(`(built-in wave policy ${nameOrPath})`, builtin);
  if (!existsSync(nameOrPath)) {
    throw new BrlError(`wave policy ${nameOrPath} is neither a built-in policy nor a file`, {
      hint: `use one of ${Object.keys(builtinWavePolicies).join(', ')}, or a path to a [[waves]] TOML file`,
      exitCode: ExitCode.notFound,
      code: 'NO_WAVE_POLICY',
    });
  }
  return parseWavePolicy(nameOrPath, await readUserText(nameOrPath, { what: 'wave policy' }));
}
