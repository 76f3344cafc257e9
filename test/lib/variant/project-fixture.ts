// Temporary brl projects for variant tests: the repo's offline packages plus variants written per test.
import { cpSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoDir = fileURLToPath(new URL('../../..', import.meta.url));
/** Fixed so builds are reproducible and independent of the repository's git state. */
export const testEpoch = 1700000000;
export const offlinePackages = ['release', 'minimal-kernel', 'minimal-policy'];

export interface Fixture {
  dir: string;
  addVariant(name: string, toml: string): void;
  addPackage(name: string, spec: string, files?: Record<string, string>): void;
}

export function makeProject(): Fixture {
  const dir = mkdtempSync(join(tmpdir(), 'brl-variant-'));
  for (const pkg of offlinePackages) cpSync(join(repoDir, 'packages-specs', pkg), join(dir, 'packages-specs', pkg), { recursive: true });
  mkdirSync(join(dir, 'variants'), { recursive: true });
  writeFileSync(join(dir, 'Release.toml'), 'version = "1.2.3"\n');
  return {
    dir,
    addVariant(name, toml) {
      mkdirSync(join(dir, 'variants', name), { recursive: true });
      writeFileSync(join(dir, 'variants', name, 'variant.toml'), toml);
    },
    addPackage(name, spec, files = {}) {
      mkdirSync(join(dir, 'packages-specs', name), { recursive: true });
      writeFileSync(join(dir, 'packages-specs', name, `${name}.spec`), spec);
      for (const [file, text] of Object.entries(files)) writeFileSync(join(dir, 'packages-specs', name, file), text);
    },
  };
}

export const minimalVariant = (extra = ''): string =>
  `included-packages = ["release", "minimal-kernel", "minimal-policy"]\nkernel-parameters = ["console=ttyS0"]\nsupported-arches = ["x86_64"]\n${extra}\n[image-layout]\nos-image-size-gib = 1\ndata-image-size-gib = 1\n`;

/** Environment for a build of a fixture: fixed epoch and build id, no git needed. */
export const buildEnv = (): NodeJS.ProcessEnv => ({ ...process.env, SOURCE_DATE_EPOCH: String(testEpoch), BRL_BUILD_ID: 'abcdef12' });
