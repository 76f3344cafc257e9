import test from 'ava';
import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { promisify } from 'node:util';
import { repoDir } from '../../helpers/cli.ts';
import { buildPackages } from '../../../src/lib/packages/build.ts';

const execFileAsync = promisify(execFile);

// Builds (or reuses from the project's build cache) the real sample packages, fetching their
// sources from the npm registry and apt sources on first use.
test('the sample hello and node-runtime run in a root made only from the sample RPMs', async (t) => {
  const result = await buildPackages(repoDir, { names: ['hello', 'node-runtime', 'glibc'], progress: 'silent' });
  for (const pkg of result.packages) t.not(pkg.status, 'failed', `${pkg.name}: ${pkg.error}\n${pkg.logTail?.join('\n')}`);
  const byName = new Map(result.packages.map((pkg) => [pkg.name, pkg.rpms]));
  t.deepEqual(byName.get('glibc')?.map((rpm) => basename(rpm).replace(/-\d.*$/, '')), ['bottlerocket-glibc', 'bottlerocket-libgcc', 'bottlerocket-libstdc++']);

  const root = mkdtempSync(join(tmpdir(), 'brl-sample-root-'));
  const rpms = ['release', 'glibc', 'hello', 'node-runtime'].flatMap((name) => byName.get(name) ?? []);
  await execFileAsync('rpm', ['--root', root, '--dbpath', '/.rpmdb', '-i', '--nodeps', '--noscripts', '--nosignature', ...rpms]);
  const sysroot = join(root, 'x86_64-bottlerocket-linux-gnu', 'sys-root');
  t.is((await execFileAsync('chroot', [sysroot, '/usr/bin/hello', 'brl'])).stdout, 'Hello, brl!\n');
  t.is((await execFileAsync('chroot', [sysroot, '/usr/bin/node', '-p', 'process.version'])).stdout, 'v24.21.0\n');
  t.regex((await execFileAsync('rpm', ['-qp', '--nosignature', '--nodigest', '--qf', '%{NAME} %{VERSION}', byName.get('hello')?.[0] as string])).stdout, /^bottlerocket-hello 1\.0$/);
});
