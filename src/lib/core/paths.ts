// Where the project tree and brl's own install live.
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BrlError, ExitCode } from './errors.ts';

/** brl's install directory (holds package.json); works from src/ and from dist/. */
export const brlInstallDir = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

/**
 * The project root: the nearest directory at or above `start` holding `packages-specs/` or
 * `variants/`. `BRL_PROJECT_DIR` overrides the search.
 */
export function findProjectDir(start: string = process.cwd()): string {
  const override = process.env.BRL_PROJECT_DIR;
  if (override) return resolve(override);
  let dir = resolve(start);
  for (;;) {
    if (existsSync(join(dir, 'packages-specs')) || existsSync(join(dir, 'variants'))) return dir;
    const parent = dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  throw new BrlError(`no brl project found at or above ${resolve(start)}`, {
    hint: 'run brl inside a project (a directory with packages-specs/ or variants/), or set BRL_PROJECT_DIR',
    exitCode: ExitCode.notFound,
    code: 'NO_PROJECT',
  });
}

/** Build outputs of a project; everything under it is disposable. */
export function buildDir(projectDir: string): string {
  return process.env.BRL_BUILD_DIR ? resolve(process.env.BRL_BUILD_DIR) : join(projectDir, 'build');
}
