// Wave policies (TOML) → manifest wave times, and when a host with a given seed may update.
import { BrlError, ExitCode } from '../core/errors.ts';
import { loadToml, parseToml, readTableArray, rejectUnknownKeys, tomlKeyError, type TomlDocument } from '../core/toml.ts';
import { MAX_SEED, sortedWaves, type Update } from './manifest.ts';
import { formatRfc3339, parseOffset, parseRfc3339 } from './time.ts';

/** One `[[waves]]` entry: when the wave starts and the cumulative share of the fleet it reaches. */
export interface WavePolicyEntry {
  /** Absolute time (epoch ms) or an offset from the release start (ms). */
  startAfter: { absoluteMs: number } | { offsetMs: number };
  fleetPercentage: number;
}

export async function loadWavePolicy(path: string): Promise<WavePolicyEntry[]> {
  return wavePolicyFromDocument(await loadToml(path));
}

export function parseWavePolicy(path: string, text: string): WavePolicyEntry[] {
  return wavePolicyFromDocument(parseToml(path, text));
}

function wavePolicyFromDocument(doc: TomlDocument): WavePolicyEntry[] {
  rejectUnknownKeys(doc, doc.data, ['waves']);
  const tables = readTableArray(doc, doc.data, 'waves') ?? [];
  if (tables.length === 0) throw tomlKeyError(doc, 'waves', 'a wave policy needs at least one [[waves]] entry');
  let previousPercentage = 0;
  return tables.map((table, index) => {
    const prefix = `waves[${index}].`;
    rejectUnknownKeys(doc, table, ['start_after', 'fleet_percentage'], prefix);
    const startAfter = table.start_after;
    let start: WavePolicyEntry['startAfter'];
    if (startAfter instanceof Date) {
      start = { absoluteMs: startAfter.getTime() };
    } else if (typeof startAfter === 'string') {
      const absolute = parseRfc3339(startAfter);
      const offset = parseOffset(startAfter);
      if (absolute !== undefined) start = { absoluteMs: absolute };
      else if (offset !== undefined) start = { offsetMs: offset };
      else throw tomlKeyError(doc, `${prefix}start_after`, `${JSON.stringify(startAfter)} is neither an RFC 3339 time nor an offset like "2 days"`);
    } else {
      throw tomlKeyError(doc, `${prefix}start_after`, 'required: an RFC 3339 time or an offset like "1 hour"');
    }
    const percentage = table.fleet_percentage;
    if (typeof percentage !== 'number' || !Number.isInteger(percentage) || percentage < 1 || percentage > 100) {
      throw tomlKeyError(doc, `${prefix}fleet_percentage`, `must be an integer from 1 to 100, got ${JSON.stringify(percentage)}`);
    }
    if (percentage <= previousPercentage) {
      throw tomlKeyError(doc, `${prefix}fleet_percentage`, `percentages are cumulative and must increase (${percentage} after ${previousPercentage})`);
    }
    previousPercentage = percentage;
    return { startAfter: start, fleetPercentage: percentage };
  });
}

/**
 * Manifest wave keys for a policy, as pubsys computes them: the first wave starts at seed 0, each
 * next wave at floor(cumulative% / 100 × 2048) in f32 arithmetic; times written in whole seconds.
 */
export function wavesFromPolicy(policy: readonly WavePolicyEntry[], releaseStartMs: number): Record<string, string> {
  const waves: Record<string, string> = {};
  let seed = 0;
  let previousTime = -Infinity;
  for (const entry of policy) {
    const time = 'absoluteMs' in entry.startAfter ? entry.startAfter.absoluteMs : releaseStartMs + entry.startAfter.offsetMs;
    if (time <= previousTime) {
      throw new BrlError(`wave policy: the wave reaching ${entry.fleetPercentage}% starts no later than the wave before it`, {
        hint: 'give each [[waves]] entry a later start_after than the one before',
        exitCode: ExitCode.badInput,
        code: 'BAD_WAVES',
      });
    }
    previousTime = time;
    if (seed < MAX_SEED) waves[String(seed)] = formatRfc3339(time);
    seed = Math.trunc(Math.fround(Math.fround(entry.fleetPercentage / 100) * MAX_SEED));
  }
  return waves;
}

/**
 * The earliest time (epoch ms) a host with `seed` may take `update`, by brl's rule: interpolated
 * by the seed's position inside its wave (`lower < seed ≤ upper`), so readiness is continuous and
 * monotonic in the seed and seed 0 waits for the first wave. Undefined when no wave constrains it.
 */
export function readyTimeForSeed(update: Update, seed: number): number | undefined {
  const waves = sortedWaves(update);
  let lower: { seed: number; time: number } | undefined;
  let upper: { seed: number; time: number } | undefined;
  for (const wave of waves) {
    if (wave.seed < seed) lower = wave;
    else if (wave.seed <= MAX_SEED && upper === undefined) upper = wave;
  }
  if (lower && upper) {
    return lower.time + Math.trunc(((upper.time - lower.time) * (seed - lower.seed)) / (upper.seed - lower.seed));
  }
  if (upper) return upper.time;
  if (lower) return lower.time;
  return undefined;
}

/** Whether a host with `seed` may take `update` at `nowMs`. */
export function isUpdateReady(update: Update, seed: number, nowMs: number): boolean {
  const readyAt = readyTimeForSeed(update, seed);
  return readyAt === undefined || nowMs >= readyAt;
}
