// SELinux labels from a file_contexts file, matched the way libselinux's setfiles decides them.
import { readFile } from 'node:fs/promises';
import { BrlError, ExitCode } from '../core/errors.ts';
import type { TreeEntry } from './tree.ts';

/** Where Bottlerocket's `fortified` policy keeps its contexts inside the built tree. */
export const fileContextsPath = 'etc/selinux/fortified/contexts/files/file_contexts';

interface ContextSpec {
  pattern: RegExp;
  /** `--` file, `-d` directory, `-l` symlink, …; undefined matches any kind. */
  kind: string | undefined;
  /** undefined for `<<none>>`: leave unlabelled. */
  context: string | undefined;
  exact: boolean;
}

const kindFlags: Readonly<Record<string, TreeEntry['kind'] | 'other'>> = {
  '--': 'file', '-d': 'directory', '-l': 'symlink', '-c': 'other', '-b': 'other', '-p': 'other', '-s': 'other',
};

export function parseFileContexts(text: string, source: string): ContextSpec[] {
  const specs: ContextSpec[] = [];
  text.split('\n').forEach((raw, index) => {
    const trimmed = raw.trim();
    if (trimmed === '' || trimmed.startsWith('#')) return;
    const fields = trimmed.split(/\s+/);
    if (fields.length !== 2 && fields.length !== 3) {
      throw new BrlError(`${source}:${index + 1}: expected "<path regex> [type] <context>", got "${trimmed}"`, {
        exitCode: ExitCode.badInput,
        code: 'BAD_FILE_CONTEXTS',
      });
    }
    const regex = fields[0] as string;
    const kind = fields.length === 3 ? (fields[1] as string) : undefined;
    if (kind !== undefined && !(kind in kindFlags)) {
      throw new BrlError(`${source}:${index + 1}: unknown file type "${kind}"`, { exitCode: ExitCode.badInput, code: 'BAD_FILE_CONTEXTS' });
    }
    const context = fields.at(-1) as string;
    let pattern: RegExp;
    try {
      pattern = new RegExp(`^(?:${regex})$`, 's');
    } catch (error) {
      throw new BrlError(`${source}:${index + 1}: invalid regular expression "${regex}": ${(error as Error).message}`, {
        exitCode: ExitCode.badInput,
        code: 'BAD_FILE_CONTEXTS',
      });
    }
    specs.push({ pattern, kind, context: context === '<<none>>' ? undefined : context, exact: !/[.^$?*+|[({\\]/.test(regex) });
  });
  // libselinux moves exact paths after the regular expressions, then takes the last match.
  return [...specs.filter((spec) => !spec.exact), ...specs.filter((spec) => spec.exact)];
}

export function labelFor(specs: readonly ContextSpec[], path: string, kind: TreeEntry['kind']): string | undefined {
  for (let index = specs.length - 1; index >= 0; index--) {
    const spec = specs[index] as ContextSpec;
    if (spec.kind !== undefined && kindFlags[spec.kind] !== kind) continue;
    if (spec.pattern.test(path)) return spec.context;
  }
  return undefined;
}

/** Labels for every entry (keys without the leading slash; '' = the root directory). */
export async function labelTree(fileContexts: string, entries: readonly TreeEntry[]): Promise<Map<string, string>> {
  const specs = parseFileContexts(await readFile(fileContexts, 'utf8'), fileContexts);
  const labels = new Map<string, string>();
  const rootLabel = labelFor(specs, '/', 'directory');
  if (rootLabel !== undefined) labels.set('', rootLabel);
  for (const entry of entries) {
    const label = labelFor(specs, `/${entry.path}`, entry.kind);
    if (label !== undefined) labels.set(entry.path, label);
  }
  return labels;
}
