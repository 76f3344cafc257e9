// Runs host commands (restart commands, reboot, generators) with their programs resolved inside the root.
import { spawn } from 'node:child_process';
import { access, constants } from 'node:fs/promises';
import { resolve } from 'node:path';
import { PathEscapeError, underRoot } from './paths.ts';

export interface CommandOutcome {
  command: string;
  status: 'ok' | 'failed' | 'skipped';
  exitCode?: number;
  signal?: string;
  stdout: string;
  stderr: string;
  note?: string;
}

export interface RunOptions {
  root: string;
  env?: NodeJS.ProcessEnv;
  stdin?: string;
  timeoutMs?: number;
}

const OUTPUT_LIMIT = 64 * 1024;

/**
 * Runs `argv` without a shell. Outside a `/` root an absolute program is looked up inside the
 * root, so a dev root never restarts the build machine's services; a program the root lacks is
 * `skipped`, not run from the host.
 */
export async function runHostCommand(argv: readonly string[], options: RunOptions): Promise<CommandOutcome> {
  const command = argv.join(' ');
  const [program, ...args] = argv;
  if (program === undefined || program.length === 0) {
    return { command, status: 'failed', stdout: '', stderr: '', note: 'empty command' };
  }
  let executable = program;
  if (resolve(options.root) !== '/' && program.startsWith('/')) {
    try {
      executable = underRoot(options.root, program, 'command');
      await access(executable, constants.X_OK);
    } catch (error) {
      const reason = error instanceof PathEscapeError ? error.message : `${program} is not an executable inside the root`;
      return { command, status: 'skipped', stdout: '', stderr: '', note: reason };
    }
  }
  return new Promise((done) => {
    const child = spawn(executable, args, {
      env: options.env ?? process.env,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    // Our own timer rather than spawn's `timeout`, whose timer outlives a child that failed to
    // start and keeps the process alive; unref'd so it never holds a finished server open.
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 120_000);
    timer.unref();
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      if (stdout.length < OUTPUT_LIMIT) stdout += chunk.toString('utf8');
    });
    child.stderr.on('data', (chunk: Buffer) => {
      if (stderr.length < OUTPUT_LIMIT) stderr += chunk.toString('utf8');
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(options.stdin ?? '');
    child.on('error', (error) => {
      clearTimeout(timer);
      done({ command, status: 'failed', stdout, stderr, note: error.message });
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      done({
        command,
        status: code === 0 ? 'ok' : 'failed',
        ...(code === null ? {} : { exitCode: code }),
        ...(signal === null ? {} : { signal }),
        stdout,
        stderr,
      });
    });
  });
}
