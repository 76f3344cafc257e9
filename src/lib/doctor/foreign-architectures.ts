// The Debian architectures dpkg must know besides the machine's own, so apt indexes and downloads
// the debs of every arch brl builds for (`deb:<name>:arm64=…`, `brl debs lock`).
import { execFileSync } from 'node:child_process';
import { debianArchOf } from '../packages/arches.ts';

/** The ones neither native nor enabled (`dpkg --add-architecture`); empty when dpkg is absent (not a Debian host). */
export function missingForeignArchitectures(): string[] {
  const dpkg = (args: string[]): string[] | undefined => {
    try {
      return execFileSync('dpkg', args, { encoding: 'utf8' }).split('\n').filter(Boolean);
    } catch {
      return undefined;
    }
  };
  const native = dpkg(['--print-architecture']);
  const foreign = dpkg(['--print-foreign-architectures']);
  if (native === undefined || foreign === undefined) return [];
  return Object.values(debianArchOf).filter((architecture) => !native.includes(architecture) && !foreign.includes(architecture));
}
