// Bundles test code the way packages-specs/brl-host bundles the host programs (the esbuild command
// is read from the spec, so the two cannot drift): code that only works under Node's own loader
// (e.g. a dynamic import of a CommonJS package) fails here as it fails on a booted host.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoDir } from './cli.ts';

/** The spec's esbuild arguments after the entry points, with the output directory replaced. */
function specEsbuildArgs(outdir: string): string[] {
  const spec = readFileSync(join(repoDir, 'packages-specs', 'brl-host', 'brl-host.spec'), 'utf8');
  const match = /bin\/esbuild \$entries %\{workers\} \\\n((?:.*\\\n)*.*)\n/.exec(spec);
  if (!match) throw new Error('brl-host.spec has no esbuild command');
  const shellWords = match[1]!.replace(/\\\n/g, ' ').replaceAll('%{_builddir}/bundles', outdir);
  // The shell that runs %build splits the words; so does this one.
  const split = execFileSync('bash', ['-c', `printf '%s\\0' ${shellWords}`], { encoding: 'utf8' });
  return split.split('\0').filter((word) => word !== '');
}

/** Writes `source` as entry.ts in `dir`, bundles it like the host programs and returns the bundle's path. */
export function bundleAsHost(source: string, dir: string): string {
  const outdir = join(dir, 'bundles');
  mkdirSync(outdir, { recursive: true });
  const entry = join(dir, 'entry.ts');
  writeFileSync(entry, source);
  execFileSync(join(repoDir, 'node_modules', '@esbuild', 'linux-x64', 'bin', 'esbuild'), [entry, ...specEsbuildArgs(outdir)], { stdio: ['ignore', 'ignore', 'pipe'] });
  return join(outdir, 'entry.js');
}
