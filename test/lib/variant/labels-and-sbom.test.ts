import test from 'ava';
import { labelFor, parseFileContexts } from '../../../src/lib/variant/selinux.ts';
import { buildInventory } from '../../../src/lib/variant/inventory.ts';
import { cycloneDxDocument, spdxDocument, spdxExpression, type SbomSubject } from '../../../src/lib/variant/sbom.ts';
import { cycloneDxSchemaErrors, spdxSchemaErrors } from '../../helpers/sbom-schemas.ts';
import type { RpmPackage } from '../../../src/lib/packages/rpm.ts';

test('file contexts: exact paths beat expressions, later expressions beat earlier, types filter', (t) => {
  const specs = parseFileContexts([
    '/.*  system_u:object_r:os_t:s0',
    '/etc(/.*)?  system_u:object_r:etc_t:s0',
    '/etc/hosts  system_u:object_r:hosts_t:s0',
    '/etc/.*\\.conf  system_u:object_r:conf_t:s0',
    '/tmp  -d  <<none>>',
    '/usr/bin/.*  --  system_u:object_r:bin_t:s0',
  ].join('\n'), 'file_contexts');
  t.is(labelFor(specs, '/etc/hosts', 'file'), 'system_u:object_r:hosts_t:s0');
  t.is(labelFor(specs, '/etc/a.conf', 'file'), 'system_u:object_r:conf_t:s0');
  t.is(labelFor(specs, '/etc/x', 'file'), 'system_u:object_r:etc_t:s0');
  t.is(labelFor(specs, '/tmp', 'directory'), undefined);
  t.is(labelFor(specs, '/usr/bin/x', 'file'), 'system_u:object_r:bin_t:s0');
  t.is(labelFor(specs, '/usr/bin/x', 'symlink'), 'system_u:object_r:os_t:s0');
  t.throws(() => parseFileContexts('/a b c d\n', 'fc'), { message: /fc:1: expected/ });
});

const pkg = (name: string, license: string): RpmPackage => ({
  path: `/rpms/${name}.rpm`, name, epoch: name.endsWith('z') ? 1 : undefined, version: '1.0', release: '1.br1', arch: 'x86_64', license,
  url: 'https://example.invalid', summary: `the ${name}`, group: 'System', sourceRpm: '', installedSizeBytes: 1, sha256: 'a'.repeat(64),
  requires: [], provides: [], conflicts: [], obsoletes: [], files: [],
});

test('the inventory strips the prefix, sorts by name and stamps the epoch', (t) => {
  const inventory = buildInventory([pkg('bottlerocket-zz', 'MIT'), pkg('bottlerocket-aa', 'MIT')], 1700000000);
  t.deepEqual(inventory.Content.map((entry) => entry.Name), ['aa', 'zz']);
  t.like(inventory.Content[1], { Publisher: 'Bottlerocket', Epoch: '1', InstalledTime: '2023-11-14T22:13:20Z', ApplicationType: 'System', Architecture: 'x86_64' });
});

test('SBOM licences pass through when they are SPDX expressions', (t) => {
  t.is(spdxExpression('MIT'), 'MIT');
  t.is(spdxExpression('(MIT OR Apache-2.0) AND BSD-3-Clause'), '(MIT OR Apache-2.0) AND BSD-3-Clause');
  t.is(spdxExpression('GPL-2.0-only WITH Linux-syscall-note'), 'GPL-2.0-only WITH Linux-syscall-note');
  t.is(spdxExpression('ASL 2.0'), undefined);
  t.is(spdxExpression('MIT AND'), undefined);
  const subject = { imageName: 'bottlerocket-dev-x86_64-1.0.0-abcdef12', variant: 'dev', arch: 'x86_64', version: '1.0.0', buildId: 'abcdef12', epoch: 0, toolVersion: '0.1.0', rootHash: 'c'.repeat(64), bootSigning: { signed: false } };
  const packages = [pkg('bottlerocket-a', 'MIT'), pkg('bottlerocket-b', 'ASL 2.0')];
  const spdx = spdxDocument(subject, packages) as { spdxVersion: string; packages: Array<Record<string, unknown>> };
  t.is(spdx.spdxVersion, 'SPDX-2.3');
  t.like(spdx.packages[1], { name: 'bottlerocket-a', versionInfo: '1.0-1.br1', licenseDeclared: 'MIT', checksums: [{ algorithm: 'SHA256', checksumValue: 'a'.repeat(64) }] });
  t.like(spdx.packages[2], { licenseDeclared: 'NOASSERTION', licenseComments: 'RPM License tag: ASL 2.0' });
  const cdx = cycloneDxDocument(subject, packages) as { specVersion: string; components: Array<Record<string, unknown>> };
  t.is(cdx.specVersion, '1.5');
  t.like(cdx.components[0], { name: 'bottlerocket-a', licenses: [{ expression: 'MIT' }], hashes: [{ alg: 'SHA-256', content: 'a'.repeat(64) }], purl: 'pkg:rpm/bottlerocket/bottlerocket-a@1.0-1.br1?arch=x86_64' });
  t.like(cdx.components[1], { licenses: [{ license: { name: 'ASL 2.0' } }] });
});

test('both SBOMs pass their official JSON schemas, and their ids follow the content', (t) => {
  const subject = { imageName: 'bottlerocket-dev-x86_64-1.0.0-abcdef12', variant: 'dev', arch: 'x86_64', version: '1.0.0', buildId: 'abcdef12', epoch: 1_700_000_000, toolVersion: '0.1.0', rootHash: 'c'.repeat(64), bootSigning: { signed: false } };
  const packages = [pkg('bottlerocket-a', 'MIT'), pkg('bottlerocket-b', 'ASL 2.0')];
  const spdx = spdxDocument(subject, packages) as { documentNamespace: string };
  const cdx = cycloneDxDocument(subject, packages) as { serialNumber: string };
  t.deepEqual(spdxSchemaErrors(spdx), []);
  t.deepEqual(cycloneDxSchemaErrors(cdx), []);
  // The oracles can fail: the purpose value that SPDX 2.3.1 does not know, a serial number that is not a URN.
  const withPurpose = spdxDocument(subject, packages) as { packages: Array<Record<string, unknown>> };
  withPurpose.packages[0]!.primaryPackagePurpose = 'OPERATING_SYSTEM';
  t.true(spdxSchemaErrors(withPurpose).some((error) => error.startsWith('/packages/0/primaryPackagePurpose')));
  t.true(cycloneDxSchemaErrors({ ...cdx, serialNumber: 'not-a-urn' }).some((error) => error.startsWith('/serialNumber')));

  // Same content, same ids; a changed root (same packages) or a changed package, new ones.
  const ids = (s: typeof subject, p: RpmPackage[]) => [(spdxDocument(s, p) as { documentNamespace: string }).documentNamespace, (cycloneDxDocument(s, p) as { serialNumber: string }).serialNumber];
  t.deepEqual(ids(subject, packages), [spdx.documentNamespace, cdx.serialNumber]);
  t.regex(cdx.serialNumber, /^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  const otherRoot = ids({ ...subject, rootHash: 'd'.repeat(64) }, packages);
  const otherPackage = ids(subject, [pkg('bottlerocket-a', 'MIT'), { ...pkg('bottlerocket-b', 'ASL 2.0'), sha256: 'e'.repeat(64) }]);
  for (const other of [otherRoot, otherPackage]) {
    t.notDeepEqual(other[0], spdx.documentNamespace);
    t.notDeepEqual(other[1], cdx.serialNumber);
  }
});

test('the SBOMs say whether the boot path is signed: unsigned development images and signed ones differ, and both pass the schemas', (t) => {
  const unsigned: SbomSubject = { imageName: 'bottlerocket-dev-x86_64-1.0.0-abcdef12', variant: 'dev', arch: 'x86_64', version: '1.0.0', buildId: 'abcdef12', epoch: 0, toolVersion: '0.1.0', rootHash: 'c'.repeat(64), bootSigning: { signed: false } };
  const signed: SbomSubject = { ...unsigned, bootSigning: { signed: true, dbCertificateSha256: 'f'.repeat(64), grubKeyFingerprint: 'A'.repeat(40) } };
  const packages = [pkg('bottlerocket-a', 'MIT')];
  const property = (subject: SbomSubject, name: string) =>
    ((cycloneDxDocument(subject, packages) as { metadata: { component: { properties: Array<{ name: string; value: string }> } } }).metadata.component.properties.find((p) => p.name === name))?.value;
  t.is(property(unsigned, 'brl:secure-boot'), 'unsigned');
  t.is(property(signed, 'brl:secure-boot'), 'signed');
  t.is(property(signed, 'brl:secure-boot-db-sha256'), 'f'.repeat(64));
  const comment = (subject: SbomSubject) => (spdxDocument(subject, packages) as { packages: Array<{ comment?: string }> }).packages[0]!.comment;
  t.regex(comment(unsigned) ?? '', /unsigned boot path \(development image\)/);
  t.regex(comment(signed) ?? '', new RegExp(`db certificate with SHA-256 ${'f'.repeat(64)}.*key ${'A'.repeat(40)}`));
  t.deepEqual(spdxSchemaErrors(spdxDocument(signed, packages)), []);
  t.deepEqual(cycloneDxSchemaErrors(cycloneDxDocument(signed, packages)), []);
  t.not((spdxDocument(signed, packages) as { documentNamespace: string }).documentNamespace, (spdxDocument(unsigned, packages) as { documentNamespace: string }).documentNamespace);
});
