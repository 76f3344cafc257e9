// SOURCE_DATE_EPOCH and BUILD_ID: the commit's time and short id, which name and seed every build.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { BrlError, ExitCode } from '../core/errors.ts';

const run = promisify(execFile);

export interface BuildIdentity {
  sourceDateEpoch: number;
  /** 8 hex digits, `-dirty` when the tree has changes, `00000000` outside git. */
  buildId: string;
}

/** `SOURCE_DATE_EPOCH` wins when set; otherwise HEAD's commit time; outside git the build fails. */
export async function resolveBuildIdentity(projectDir: string, env: NodeJS.ProcessEnv = process.env): Promise<BuildIdentity> {
  const buildId = env.BRL_BUILD_ID ?? (await gitBuildId(projectDir));
  const fromEnv = env.SOURCE_DATE_EPOCH;
  if (fromEnv !== undefined && fromEnv !== '') {
    if (!/^\d+$/.test(fromEnv)) {
      throw new BrlError(`SOURCE_DATE_EPOCH="${fromEnv}" is not a whole number of seconds`, {
        hint: 'unset it to use the commit time, or set it to e.g. $(git show -s --format=%ct HEAD)',
        exitCode: ExitCode.badInput,
        code: 'BAD_SOURCE_DATE_EPOCH',
      });
    }
    return { sourceDateEpoch: Number(fromEnv), buildId };
  }
  const commitTime = await git(projectDir, ['show', '-s', '--format=%ct', 'HEAD']);
  if (commitTime === undefined || !/^\d+$/.test(commitTime)) {
    throw new BrlError('SOURCE_DATE_EPOCH is unset and the project has no git commit to take it from', {
      hint: 'commit the project, or set SOURCE_DATE_EPOCH to a fixed time in seconds',
      exitCode: ExitCode.badInput,
      code: 'NO_SOURCE_DATE_EPOCH',
    });
  }
  return { sourceDateEpoch: Number(commitTime), buildId };
}

async function gitBuildId(projectDir: string): Promise<string> {
  const described = await git(projectDir, ['--no-optional-locks', 'describe', '--always', '--dirty', '--exclude', '*', '--abbrev=8']);
  return described !== undefined && /^[0-9a-f]{8}(-dirty)?$/.test(described) ? described : '00000000';
}

async function git(cwd: string, args: string[]): Promise<string | undefined> {
  try {
    const { stdout } = await run('git', args, { cwd });
    return stdout.trim();
  } catch {
    return undefined;
  }
}
