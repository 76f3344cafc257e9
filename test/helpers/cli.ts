// Runs the built CLI (dist/) as a user would, through bin/brl.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoDir = fileURLToPath(new URL('../..', import.meta.url));

export interface CliResult {
  stdout: string;
  stderr: string;
  exitCode: number;
}

export function brl(args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(
      join(repoDir, 'bin', 'brl'),
      args,
      { cwd: options.cwd ?? repoDir, env: { ...process.env, ...options.env }, maxBuffer: 64 * 1024 * 1024 },
      (error, stdout, stderr) => {
        const exitCode = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
        resolve({ stdout, stderr, exitCode });
      },
    );
  });
}

/** oclif wraps error text at the terminal width behind ` › `; undo that to match whole sentences. */
export function oneLine(text: string): string {
  return text.replace(/\s*\n\s*›\s*/g, ' ');
}
