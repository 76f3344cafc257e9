// The application inventory: one entry per installed RPM, sorted by name, as upstream writes it.
import { BrlError, ExitCode } from '../core/errors.ts';
import type { RpmPackage } from '../packages/rpm.ts';

export interface InventoryEntry {
  Name: string;
  Publisher: string;
  Version: string;
  Release: string;
  Epoch: string;
  InstalledTime: string;
  ApplicationType: string;
  Architecture: string;
  Url: string;
  Summary: string;
}

export interface ApplicationInventory {
  Content: InventoryEntry[];
}

/** `YYYY-MM-DDTHH:MM:SSZ` of the build's SOURCE_DATE_EPOCH. */
export function inventoryTime(epoch: number): string {
  return new Date(epoch * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export function buildInventory(packages: readonly RpmPackage[], epoch: number): ApplicationInventory {
  const installedTime = inventoryTime(epoch);
  const content = packages
    .map((pkg) => ({
      Name: pkg.name.replace(/^bottlerocket-/, ''),
      Publisher: 'Bottlerocket',
      Version: pkg.version,
      Release: pkg.release,
      Epoch: String(pkg.epoch ?? 0),
      InstalledTime: installedTime,
      ApplicationType: pkg.group === '' ? 'Unspecified' : pkg.group,
      Architecture: pkg.arch,
      Url: pkg.url,
      Summary: pkg.summary,
    }))
    .sort((a, b) => (a.Name < b.Name ? -1 : a.Name > b.Name ? 1 : 0));
  if (content.length !== packages.length) {
    throw new BrlError(`application inventory has ${content.length} entries for ${packages.length} packages`, {
      exitCode: ExitCode.buildFailed,
      code: 'INVENTORY_MISMATCH',
    });
  }
  return { Content: content };
}
