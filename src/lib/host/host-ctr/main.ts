// host-ctr's command line: `run` supervises one host container until SIGTERM, `clean-up` removes
// what is left of one; both talk to host-containerd. Exit 0 / 1 (failure) / 2 (usage).
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ContainerdClient } from '../../containerd/client.ts';
import { HOST_CONTAINERD_SOCKET } from '../paths.ts';
import { hostCtrToml, readRegistryConfig } from './registry-config.ts';
import { cleanUpContainer, runHostContainer } from './run.ts';

const USAGE = `Usage: host-ctr run --container-id=NAME --source=REFERENCE [--superpowered=true|false]
       host-ctr clean-up --container-id=NAME

  --containerd-socket PATH   host-containerd's socket (default ${HOST_CONTAINERD_SOCKET})
  --registry-config PATH     registry mirrors and credentials (default ${hostCtrToml}; none when absent)
  --root DIR                 the host root a superpowered container sees (default /)
  --state-dir DIR            status file and the container's output FIFOs (default /run/host-ctr)

The container's stdout and stderr come out on host-ctr's stderr, a line at a time, as
"NAME: LINE" and "NAME (stderr): LINE"; host-ctr's own lines start "host container NAME:".
`;

export interface HostCtrIo {
  /** False when the text waits in memory behind what the reader (the journal) has not taken yet. */
  stderr(text: string): boolean | void;
  /** Settles once stderr has written out what was waiting; the container's output is read no faster. */
  drained?(): Promise<void>;
  /** Aborted on SIGTERM/SIGINT. */
  signal: AbortSignal;
}

export async function hostCtrMain(argv: readonly string[], io: HostCtrIo): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      allowPositionals: true,
      options: {
        'container-id': { type: 'string' },
        source: { type: 'string' },
        superpowered: { type: 'string', default: 'false' },
        'containerd-socket': { type: 'string', default: HOST_CONTAINERD_SOCKET },
        'registry-config': { type: 'string', default: hostCtrToml },
        root: { type: 'string', default: '/' },
        'state-dir': { type: 'string', default: '/run/host-ctr' },
      },
    });
  } catch (error) {
    io.stderr(`${(error as Error).message}\n\n${USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  const command = positionals[0];
  const name = values['container-id'];
  const usage = (message: string): number => {
    io.stderr(`${message}\n\n${USAGE}`);
    return 2;
  };
  if (positionals.length !== 1 || (command !== 'run' && command !== 'clean-up')) return usage('give one command: run or clean-up');
  if (name === undefined || !/^[A-Za-z0-9-]{1,76}$/.test(name)) return usage('--container-id must be 1-76 ASCII letters, digits or -');
  if (values.superpowered !== 'true' && values.superpowered !== 'false') return usage('--superpowered must be true or false');
  const client = new ContainerdClient(values['containerd-socket']);
  const log = (line: string): void => {
    io.stderr(`${line}\n`);
  };
  try {
    if (command === 'clean-up') {
      await cleanUpContainer(client, name);
      return 0;
    }
    if (values.source === undefined || values.source === '') return usage('run needs --source');
    await runHostContainer({
      client,
      name,
      source: values.source,
      superpowered: values.superpowered === 'true',
      registryHosts: await readRegistryConfig(values['registry-config']),
      host: { root: values.root, containerDir: join(values.root, 'local/host-containers', name) },
      stateDir: values['state-dir'],
      signal: io.signal,
      log,
      output: (line) => (io.stderr(`${line}\n`) === false ? io.drained?.() : undefined),
    });
    return 0;
  } catch (error) {
    log(`host-ctr ${command} ${name}: ${(error as Error).message}`);
    return 1;
  } finally {
    client.close();
  }
}
