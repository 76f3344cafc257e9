// Installs the Debian packages behind brl's host tools when any is missing (used by `npm test` and
// `npm run sample`), and enables in dpkg the Debian architectures of the arches brl builds (arm64 on an
// amd64 machine), so apt serves their debs. As root it runs dpkg and apt-get; otherwise it prints the commands and fails.
import { spawnSync } from 'node:child_process';
import { missingForeignArchitectures } from '../src/lib/doctor/foreign-architectures.ts';
import { checkHostTools, installCommand } from '../src/lib/doctor/host-tools.ts';

const missing = checkHostTools().filter((tool) => tool.path === undefined);
const architectures = missingForeignArchitectures();
if (missing.length === 0 && architectures.length === 0) process.exit(0);

const names = missing.map((tool) => tool.command).join(', ');
const addArchitectures = architectures.map((architecture) => `dpkg --add-architecture ${architecture}`);
if (process.getuid?.() !== 0) {
  console.error(`brl needs these host tools: ${names || 'none'}; Debian architectures to enable: ${architectures.join(', ') || 'none'}\nInstall them with:\n  ${[...addArchitectures.map((command) => `sudo ${command}`), installCommand(missing, false)].join(' && ')}`);
  process.exit(5);
}
for (const architecture of architectures) {
  console.error(`enabling the ${architecture} architecture in dpkg (dpkg --add-architecture ${architecture}) for the debs of ${architecture} package builds`);
  if (spawnSync('dpkg', ['--add-architecture', architecture], { stdio: 'inherit' }).status !== 0) process.exit(5);
}
console.error(`installing host tools: ${names}`);
const packages = [...new Set(missing.map((tool) => tool.debianPackage))];
const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
for (const args of [['update', '-qq'], ...(packages.length > 0 ? [['install', '-y', '-qq', '--no-install-recommends', ...packages]] : [])]) {
  const result = spawnSync('apt-get', args, { stdio: 'inherit', env });
  if (result.status !== 0) {
    console.error(`apt-get ${args[0]} failed (exit ${result.status ?? result.signal})`);
    process.exit(5);
  }
}
