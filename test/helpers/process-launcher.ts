// An ExecLauncher that runs commands as processes of this machine, for testing the `/exec` protocol
// apart from a container runtime: pipes as given, or a real terminal from util-linux's `script`
// sized with `stty` to the size the client asked for. Targets it does not know are refused as the
// runtime refuses them.
import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import { PassThrough } from 'node:stream';
import { ExecTargetError, type ExecLauncher, type ExecProcess } from '../../src/lib/host/exec/launcher.ts';

export function processLauncher(targets: readonly string[]): ExecLauncher {
  return {
    async start(request): Promise<ExecProcess> {
      if (!targets.includes(request.target)) throw new ExecTargetError(`no host container named '${request.target}'`);
      const quoted = request.command.map((word) => `'${word.replaceAll("'", "'\\''")}'`).join(' ');
      const argv = request.tty
        ? ['script', '-qefc', `stty rows ${request.tty.size.rows} cols ${request.tty.size.cols}; exec ${quoted}`, '/dev/null']
        : request.command;
      const child = spawn(argv[0]!, argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'], env: { PATH: process.env.PATH, TERM: 'screen' } });
      await new Promise<void>((resolve, reject) => {
        child.once('spawn', resolve);
        child.once('error', reject);
      });
      const output = new PassThrough();
      let open = 2;
      for (const stream of [child.stdout, child.stderr]) {
        stream.pipe(output, { end: false });
        stream.once('end', () => {
          open -= 1;
          if (open === 0) output.end();
        });
      }
      const exit = new Promise<number>((resolve) => {
        child.once('exit', (code, signal) => resolve(code ?? 128 + (signal ? constants.signals[signal] : 0)));
      });
      return {
        stdin: child.stdin,
        output,
        exit,
        // `script` owns the terminal; resizing a running one is tested on containerd (exec-containerd.test.ts).
        resize: async () => undefined,
        kill: async () => void child.kill('SIGKILL'),
      };
    },
  };
}
