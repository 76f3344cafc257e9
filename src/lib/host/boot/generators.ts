// sundog: run setting generators for settings still unset and PATCH their output into the launch transaction.
import { randomInt } from 'node:crypto';
import { apiCall } from '../apiclient/request.ts';
import { runHostCommand } from '../commands.ts';
import { parseKey } from '../datastore/key.ts';
import { isJsonObject, type JsonObject } from '../datastore/tree.ts';
import { LAUNCH_TX } from './commit-launch.ts';

export interface GeneratorResult {
  key: string;
  command: string;
  status: 'generated' | 'populated' | 'skipped';
}

export class GeneratorError extends Error {
  override readonly name = 'GeneratorError';
}

/** Upstream runs each generator for up to 360 s. */
const GENERATOR_TIMEOUT_MS = 360_000;

/**
 * Generators brl carries itself, so a root needs no helper binary for them:
 * `bork seed` picks the update wave seed (0–2047).
 */
const BUILTIN: Record<string, () => unknown> = {
  'bork seed': () => randomInt(0, 2048),
};

export async function runGenerators(socketPath: string, root: string): Promise<GeneratorResult[]> {
  const generators = JSON.parse(await apiCall(socketPath, 'GET', '/metadata/setting-generators')) as Record<string, string>;
  const settings = JSON.parse(await apiCall(socketPath, 'GET', '/settings')) as JsonObject;
  const results: GeneratorResult[] = [];
  for (const [key, command] of Object.entries(generators)) {
    const segments = parseKey(key);
    if (isPopulated(settings, segments.slice(1))) {
      results.push({ key, command, status: 'populated' });
      continue;
    }
    const value = await generate(command, root, key);
    if (value === undefined) {
      results.push({ key, command, status: 'skipped' });
      continue;
    }
    let fragment: unknown = value;
    for (const segment of segments.slice(1).reverse()) fragment = { [segment]: fragment };
    await apiCall(socketPath, 'PATCH', `/settings?tx=${LAUNCH_TX}`, JSON.stringify(fragment));
    results.push({ key, command, status: 'generated' });
  }
  return results;
}

function isPopulated(settings: JsonObject, segments: readonly string[]): boolean {
  let node: unknown = settings;
  for (const segment of segments) {
    if (!isJsonObject(node) || !(segment in node)) return false;
    node = node[segment];
  }
  return true;
}

/** Exit 0 → stdout is the JSON value; exit 2 → skip; anything else fails the boot step. */
async function generate(command: string, root: string, key: string): Promise<unknown> {
  const builtin = BUILTIN[command.trim()];
  if (builtin) return builtin();
  const outcome = await runHostCommand(splitCommand(command), { root, timeoutMs: GENERATOR_TIMEOUT_MS });
  if (outcome.status === 'skipped') throw new GeneratorError(`generator for ${key} (${command}): ${outcome.note}`);
  if (outcome.exitCode === 2) return undefined;
  if (outcome.status !== 'ok') {
    throw new GeneratorError(
      `generator for ${key} (${command}) failed: ${outcome.signal ? `signal ${outcome.signal}` : `exit ${outcome.exitCode}`} ${outcome.stderr.trim()}`,
    );
  }
  try {
    return JSON.parse(outcome.stdout) as unknown;
  } catch {
    throw new GeneratorError(`generator for ${key} (${command}) printed no JSON: ${outcome.stdout.slice(0, 200)}`);
  }
}

/** POSIX-shell-like word splitting (quotes and backslashes), with no shell run. */
export function splitCommand(command: string): string[] {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  let quote: '"' | "'" | undefined;
  for (let index = 0; index < command.length; index += 1) {
    const char = command[index] as string;
    if (quote) {
      if (char === quote) quote = undefined;
      else if (char === '\\' && quote === '"' && index + 1 < command.length) word += command[++index];
      else word += char;
    } else if (char === '"' || char === "'") {
      quote = char;
      inWord = true;
    } else if (char === '\\' && index + 1 < command.length) {
      word += command[++index];
      inWord = true;
    } else if (/\s/.test(char)) {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
    } else {
      word += char;
      inWord = true;
    }
  }
  if (quote) throw new GeneratorError(`unbalanced quote in generator command '${command}'`);
  if (inWord) words.push(word);
  return words;
}
