// The apiserver's `/exec` launcher: commands run in host containers on host-containerd. The gRPC
// client is loaded with the first session, so an apiserver that never execs never loads it.
import { existsSync } from 'node:fs';
import { HOST_CONTAINERD_SOCKET } from '../paths.ts';
import { ExecTargetError, type ExecLauncher } from './launcher.ts';

/**
 * host-containerd starts after the apiserver and does not run at all on a host without host
 * containers, so its socket is looked for at each session, not once.
 */
export function hostContainerdLauncher(socketPath: string = HOST_CONTAINERD_SOCKET): ExecLauncher {
  let launcher: Promise<ExecLauncher> | undefined;
  return {
    start: async (request) => {
      if (!existsSync(socketPath)) throw new ExecTargetError(`cannot exec in '${request.target}': this host runs no host containers (no ${socketPath})`);
      launcher ??= import('./containerd-launcher.ts').then(({ ContainerdExecLauncher }) => new ContainerdExecLauncher({ socketPath }));
      return (await launcher).start(request);
    },
  };
}
