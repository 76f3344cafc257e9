// /var/lib/dpkg/status for an image assembled without dpkg, so `dpkg -l` and image scanners see
// exactly the locked packages, with their conffiles and md5s as dpkg would have recorded them.
import type { DebControl } from './deb.ts';

export interface InstalledDeb {
  control: DebControl;
  /** Conffile path → md5 of the shipped bytes. */
  conffileMd5: ReadonlyMap<string, string>;
}

/** One stanza per package in name order, each the deb's control with Status (and Conffiles) added as dpkg does. */
export function renderDpkgStatus(installed: readonly InstalledDeb[]): string {
  const stanzas = installed.map(({ control, conffileMd5 }) => {
    const lines = control.stanza.split('\n');
    const packageLine = lines.findIndex((line) => line.startsWith('Package:'));
    lines.splice(packageLine + 1, 0, 'Status: install ok installed');
    const conffiles = control.conffiles.filter((path) => conffileMd5.has(path));
    if (conffiles.length > 0) {
      const description = lines.findIndex((line) => line.startsWith('Description:'));
      const block = ['Conffiles:', ...conffiles.map((path) => ` ${path} ${conffileMd5.get(path) ?? ''}`)];
      lines.splice(description < 0 ? lines.length : description, 0, ...block);
    }
    return { name: lines[packageLine]?.slice('Package:'.length).trim() ?? '', text: lines.join('\n') };
  });
  stanzas.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return stanzas.map((stanza) => `${stanza.text}\n`).join('\n');
}
