// Installs the Debian packages behind brl's host tools when any is missing (used by `npm test` and
// `npm run sample`). As root it runs apt-get; otherwise it prints the command and fails.
import { spawnSync } from 'node:child_process';
import { checkHostTools, installCommand } from '../src/lib/doctor/host-tools.ts';

const missing = checkHostTools().filter((tool) => tool.path === undefined);
if (missing.length === 0) process.exit(0);

const names = missing.map((tool) => tool.command).join(', ');
if (process.getuid?.() !== 0) {
  console.error(`brl needs these host tools: ${names}\nInstall them with:\n  ${installCommand(missing, false)}`);
  process.exit(5);
}
console.error(`installing host tools: ${names}`);
const packages = [...new Set(missing.map((tool) => tool.debianPackage))];
const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
for (const args of [['update', '-qq'], ['install', '-y', '-qq', '--no-install-recommends', ...packages]]) {
  const result = spawnSync('apt-get', args, { stdio: 'inherit', env });
  if (result.status !== 0) {
    console.error(`apt-get ${args[0]} failed (exit ${result.status ?? result.signal})`);
    process.exit(5);
  }
}
