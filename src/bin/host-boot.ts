// host-boot: the host's boot sequence (`brl host boot` without oclif), then serves the API until
// SIGTERM/SIGINT; or, as systemd runs it, one step per unit (`host-boot storewolf`).
import { parseArgs } from 'node:util';
import { bootSteps, isBootStep, runBootStep } from '../lib/host/boot/steps.ts';

const USAGE = `Usage: host-boot [STEP] [--root DIR] [--disk PATH] [--user-data FILE|URL] [--socket-path PATH]
                 [--socket-gid GID] [--updog COMMAND] [--exit]

  Without STEP: migrator, storewolf, apiserver, early-boot-config, setting generators, commit,
  render every configuration file, and signpost mark-successful-boot when --disk is given.
  With STEP, only that step, against the running apiserver where it needs one (systemd units):
  ${bootSteps.join(', ')}.

  --root DIR              host root the fixed paths live under (default /)
  --disk PATH             OS disk to mark as successfully booted
  --user-data FILE|URL    user data TOML: a file or an IMDS-style http(s):// URL
  --socket-path PATH      API socket (default <root>/run/api.sock)
  --socket-gid GID        group owning the socket (mode 0660)
  --updog COMMAND         updog program for update actions (default updog)
  --exit                  stop the API after booting instead of serving
`;

function usage(message: string): never {
  process.stderr.write(`${message}\n\n${USAGE}`);
  process.exit(2);
}

let values;
let positionals: string[] = [];
try {
  ({ values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      root: { type: 'string', default: '/' },
      disk: { type: 'string' },
      'user-data': { type: 'string' },
      'socket-path': { type: 'string' },
      'socket-gid': { type: 'string' },
      updog: { type: 'string', default: 'updog' },
      exit: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h' },
    },
  }));
} catch (error) {
  usage((error as Error).message);
}
if (values.help) {
  process.stdout.write(USAGE);
  process.exit(0);
}
const socketGidText = values['socket-gid'];
if (socketGidText !== undefined && !/^\d+$/.test(socketGidText)) usage(`--socket-gid must be a non-negative integer, got '${socketGidText}'`);

const [step, ...extra] = positionals;
if (extra.length > 0) usage(`unexpected arguments: ${extra.join(' ')}`);
if (step !== undefined) {
  if (!isBootStep(step)) usage(`unknown step '${step}'`);
  try {
    await runBootStep(step, {
      root: values.root,
      log: (line) => process.stderr.write(`${step}: ${line}\n`),
      ...(values['user-data'] === undefined ? {} : { userData: values['user-data'] }),
      ...(values['socket-path'] === undefined ? {} : { socketPath: values['socket-path'] }),
    });
  } catch (error) {
    process.stderr.write(`${step}: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  }
  process.exit(0);
}

try {
  // The whole sequence in one process brings the API server: loaded only here, not for one step.
  const [{ bootHost }, { serveUntilSignal }] = await Promise.all([import('../lib/host/boot/boot.ts'), import('../lib/host/serve.ts')]);
  const { result, server } = await bootHost({
    root: values.root,
    updogCommand: values.updog.split(' '),
    onStep: (step, detail) => process.stderr.write(`${step.padEnd(20)} ${detail}\n`),
    ...(values.disk === undefined ? {} : { disk: values.disk }),
    ...(values['user-data'] === undefined ? {} : { userData: values['user-data'] }),
    ...(values['socket-path'] === undefined ? {} : { socketPath: values['socket-path'] }),
    ...(socketGidText === undefined ? {} : { socketGid: Number(socketGidText) }),
  });
  for (const file of result.apply.files.filter((entry) => entry.status === 'failed')) process.stderr.write(`  ${file.path}: ${file.error}\n`);
  if (values.exit) {
    await server.close();
  } else {
    process.stderr.write(`serving the API on ${server.socketPath}\n`);
    await serveUntilSignal(server);
  }
} catch (error) {
  // A failed boot step is the host's state to fix (user data, migrations, defaults), not a crash to debug.
  process.stderr.write(`host-boot: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
}
