// Test projects: a temp directory with some of the fixture packages under packages-specs/.
import { cpSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const fixturesDir = fileURLToPath(new URL('../../fixtures/packages', import.meta.url));

/** A fresh project holding copies of the named fixture packages. */
export function makeProject(fixtures: readonly string[]): string {
  const projectDir = mkdtempSync(join(tmpdir(), 'brl-packages-'));
  mkdirSync(join(projectDir, 'packages-specs'));
  for (const name of fixtures) cpSync(join(fixturesDir, name), join(projectDir, 'packages-specs', name), { recursive: true });
  return projectDir;
}

/** Writes `files` (relative path → text) into `packages-specs/<name>/`. */
export function writePackage(projectDir: string, name: string, files: Record<string, string>): void {
  for (const [rel, text] of Object.entries(files)) {
    const path = join(projectDir, 'packages-specs', name, rel);
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, text);
  }
}

/** A minimal noarch spec whose %build runs `buildScript`. */
export function scriptSpec(name: string, buildScript: string): string {
  return `Name: %{_cross_os}${name}
Version: 1.0
Release: 1%{?dist}
Summary: test package ${name}
License: MIT
BuildArch: noarch

%description
Test package.

%build
${buildScript}

%install
install -d %{buildroot}%{_cross_datadir}/${name}

%files
%dir %{_cross_datadir}/${name}
`;
}
