// SBOMs of the installed packages: SPDX 2.3 and CycloneDX 1.5 JSON (names, versions, licences, checksums).
import { createHash } from 'node:crypto';
import { uuidFromHash } from '../image/ids.ts';
import { inventoryTime } from './inventory.ts';
import type { RpmPackage } from '../packages/rpm.ts';
import type { BootSigningSummary } from '../secure-boot/boot-path.ts';

export interface SbomSubject {
  /** The artifact prefix, e.g. `bottlerocket-dev-x86_64-0.1.0-abcdef12`. */
  imageName: string;
  variant: string;
  arch: string;
  version: string;
  buildId: string;
  epoch: number;
  toolVersion: string;
  /** dm-verity root hash of ROOT-A: the whole OS content, so the document ids follow any change to it. */
  rootHash: string;
  /** Whether the boot path is signed for UEFI Secure Boot (uefi-secure-boot) or left unsigned for development. */
  bootSigning: BootSigningSummary;
}

/** One sentence for the SBOM: a reader must not take an unsigned image for a signed one. */
export function bootSigningText(summary: BootSigningSummary): string {
  return summary.signed
    ? `UEFI Secure Boot: GRUB and the kernel are Authenticode-signed for the db certificate with SHA-256 ${summary.dbCertificateSha256}; grub.cfg, the kernel and the initrd carry OpenPGP signatures by key ${summary.grubKeyFingerprint}`
    : 'unsigned boot path (development image): no Secure Boot signatures';
}

/**
 * The document's id (SPDX namespace, CycloneDX serial number) from what it describes: the same
 * content gives the same id in every build, and different content (packages, or anything else in
 * the root filesystem) a different one.
 */
export function sbomUuid(subject: SbomSubject, packages: readonly RpmPackage[], format: 'spdx' | 'cyclonedx'): string {
  const hash = createHash('sha256').update(JSON.stringify({ format, subject, packages: packages.map((pkg) => [pkg.name, pkg.epoch ?? null, pkg.version, pkg.release, pkg.arch, pkg.sha256, pkg.license]) }));
  return uuidFromHash(hash.digest());
}

/** RPM licence tags that are valid SPDX expressions pass through; others become a named licence. */
export function spdxExpression(license: string): string | undefined {
  const tokens = license.replaceAll('(', ' ( ').replaceAll(')', ' ) ').split(/\s+/).filter(Boolean);
  if (tokens.length === 0) return undefined;
  let expectOperand = true;
  let depth = 0;
  for (const token of tokens) {
    if (token === '(') { if (!expectOperand) return undefined; depth++; continue; }
    if (token === ')') { if (expectOperand || depth === 0) return undefined; depth--; continue; }
    if (token === 'AND' || token === 'OR' || token === 'WITH') { if (expectOperand) return undefined; expectOperand = true; continue; }
    if (!expectOperand || !/^(LicenseRef-)?[A-Za-z0-9][A-Za-z0-9.+-]*$/.test(token)) return undefined;
    expectOperand = false;
  }
  return expectOperand || depth !== 0 ? undefined : tokens.join(' ').replaceAll('( ', '(').replaceAll(' )', ')');
}

export function purl(pkg: RpmPackage): string {
  const qualifiers = [`arch=${pkg.arch}`, ...(pkg.epoch === undefined ? [] : [`epoch=${pkg.epoch}`])].join('&');
  return `pkg:rpm/bottlerocket/${encodeURIComponent(pkg.name)}@${encodeURIComponent(`${pkg.version}-${pkg.release}`)}?${qualifiers}`;
}

function spdxId(pkg: RpmPackage): string {
  return `SPDXRef-Package-${pkg.name.replace(/[^A-Za-z0-9.-]/g, '-')}`;
}

export function spdxDocument(subject: SbomSubject, packages: readonly RpmPackage[]): object {
  const imageId = 'SPDXRef-Image';
  return {
    spdxVersion: 'SPDX-2.3',
    dataLicense: 'CC0-1.0',
    SPDXID: 'SPDXRef-DOCUMENT',
    name: subject.imageName,
    documentNamespace: `https://brl.invalid/spdx/${subject.imageName}/${sbomUuid(subject, packages, 'spdx')}`,
    creationInfo: { created: inventoryTime(subject.epoch), creators: [`Tool: brl-${subject.toolVersion}`] },
    documentDescribes: [imageId],
    packages: [
      {
        name: `bottlerocket-${subject.variant}`,
        SPDXID: imageId,
        versionInfo: `${subject.version}-${subject.buildId}`,
        // No primaryPackagePurpose: SPDX 2.3's JSON schema spells the value OPERATING_SYSTEM and 2.3.1's
        // OPERATING-SYSTEM, so none passes both; the CycloneDX document types the image operating-system.
        downloadLocation: 'NOASSERTION',
        filesAnalyzed: false,
        licenseConcluded: 'NOASSERTION',
        licenseDeclared: 'NOASSERTION',
        copyrightText: 'NOASSERTION',
        comment: `dm-verity root hash ${subject.rootHash}; ${bootSigningText(subject.bootSigning)}`,
      },
      ...packages.map((pkg) => {
        const expression = spdxExpression(pkg.license);
        return {
          name: pkg.name,
          SPDXID: spdxId(pkg),
          versionInfo: `${pkg.epoch === undefined ? '' : `${pkg.epoch}:`}${pkg.version}-${pkg.release}`,
          supplier: 'Organization: Bottlerocket',
          downloadLocation: 'NOASSERTION',
          ...(pkg.url === '' ? {} : { homepage: pkg.url }),
          filesAnalyzed: false,
          checksums: [{ algorithm: 'SHA256', checksumValue: pkg.sha256 }],
          licenseConcluded: 'NOASSERTION',
          licenseDeclared: expression ?? 'NOASSERTION',
          ...(expression === undefined && pkg.license !== '' ? { licenseComments: `RPM License tag: ${pkg.license}` } : {}),
          copyrightText: 'NOASSERTION',
          summary: pkg.summary,
          externalRefs: [{ referenceCategory: 'PACKAGE-MANAGER', referenceType: 'purl', referenceLocator: purl(pkg) }],
        };
      }),
    ],
    relationships: [
      { spdxElementId: 'SPDXRef-DOCUMENT', relationshipType: 'DESCRIBES', relatedSpdxElement: imageId },
      ...packages.map((pkg) => ({ spdxElementId: imageId, relationshipType: 'CONTAINS', relatedSpdxElement: spdxId(pkg) })),
    ],
  };
}

export function cycloneDxDocument(subject: SbomSubject, packages: readonly RpmPackage[]): object {
  return {
    bomFormat: 'CycloneDX',
    specVersion: '1.5',
    serialNumber: `urn:uuid:${sbomUuid(subject, packages, 'cyclonedx')}`,
    version: 1,
    metadata: {
      timestamp: inventoryTime(subject.epoch),
      tools: { components: [{ type: 'application', name: 'brl', version: subject.toolVersion }] },
      component: {
        type: 'operating-system',
        'bom-ref': subject.imageName,
        name: `bottlerocket-${subject.variant}`,
        version: `${subject.version}-${subject.buildId}`,
        properties: [
          { name: 'brl:arch', value: subject.arch },
          { name: 'brl:verity-root-hash', value: subject.rootHash },
          { name: 'brl:secure-boot', value: subject.bootSigning.signed ? 'signed' : 'unsigned' },
          ...(subject.bootSigning.dbCertificateSha256 === undefined ? [] : [{ name: 'brl:secure-boot-db-sha256', value: subject.bootSigning.dbCertificateSha256 }]),
          ...(subject.bootSigning.grubKeyFingerprint === undefined ? [] : [{ name: 'brl:grub-key-fingerprint', value: subject.bootSigning.grubKeyFingerprint }]),
        ],
      },
    },
    components: packages.map((pkg) => {
      const expression = spdxExpression(pkg.license);
      return {
        type: 'library',
        'bom-ref': purl(pkg),
        supplier: { name: 'Bottlerocket' },
        name: pkg.name,
        version: `${pkg.epoch === undefined ? '' : `${pkg.epoch}:`}${pkg.version}-${pkg.release}`,
        description: pkg.summary,
        hashes: [{ alg: 'SHA-256', content: pkg.sha256 }],
        licenses: expression !== undefined ? [{ expression }] : pkg.license === '' ? [] : [{ license: { name: pkg.license } }],
        purl: purl(pkg),
        ...(pkg.url === '' ? {} : { externalReferences: [{ type: 'website', url: pkg.url }] }),
      };
    }),
    dependencies: [{ ref: subject.imageName, dependsOn: packages.map(purl) }],
  };
}
