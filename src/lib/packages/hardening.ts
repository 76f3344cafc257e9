// The hardening check: every ELF executable and shared object a package ships is PIE, full RELRO, NX stack, stack-protected.
import { lstat } from 'node:fs/promises';
import { join } from 'node:path';
import { EM_AARCH64, EM_X86_64, elfKind, hasFullRelro, hasNonExecutableStack, hasStackProtector, isElfFile, isPie, readElf, type ElfKind } from './elf.ts';
import type { HardeningCheck, HardeningException } from './manifest.ts';
import { crossSysroot, type BuildArch } from './macros.ts';

export interface PayloadFile {
  /** The RPM file the path belongs to. */
  rpm: string;
  /** Absolute path inside the payload. */
  path: string;
}

export interface HardeningFinding {
  rpm: string;
  /** The path in the image: the payload path without the `/<triple>/sys-root` prefix. */
  path: string;
  kind: ElfKind;
  /** Checks the file fails and no exception allows. */
  failed: HardeningCheck[];
  /** Checks the file fails that an exception allows, with its reason. */
  allowed: Array<{ check: HardeningCheck; reason: string }>;
}

export interface HardeningReport {
  /** ELF executables and shared objects examined. */
  checkedFiles: number;
  /** Files that fail at least one check (allowed or not). */
  findings: HardeningFinding[];
  /** True when no finding has an unallowed failure. */
  passed: boolean;
}

const machineOf: Record<BuildArch, number> = { x86_64: EM_X86_64, aarch64: EM_AARCH64 };

/** The checks `path` fails; PIE only concerns executables (shared objects are position independent by nature). */
export async function failedChecks(filePath: string): Promise<{ kind: ElfKind; failed: HardeningCheck[]; machine: number } | undefined> {
  const info = await readElf(filePath);
  const kind = elfKind(info);
  if (kind === undefined) return undefined;
  const failed: HardeningCheck[] = [];
  if (kind === 'executable' && !isPie(info)) failed.push('pie');
  if (!hasFullRelro(info)) failed.push('relro');
  if (!hasNonExecutableStack(info)) failed.push('nx-stack');
  if (!hasStackProtector(info)) failed.push('stack-protector');
  return { kind, failed, machine: info.machine };
}

/** The exception covering `check` for `path` (an image path): the same path, or a prefix when the pattern ends in `*`. */
export function findException(exceptions: readonly HardeningException[], path: string, check: HardeningCheck): HardeningException | undefined {
  return exceptions.find(
    (exception) =>
      exception.checks.includes(check) &&
      (exception.file.endsWith('*') ? path.startsWith(exception.file.slice(0, -1)) : path === exception.file),
  );
}

/**
 * Checks the payload files as they lie in `rootDir` (the build root rpmbuild packaged them from).
 * ELF files for another machine (firmware blobs and the like) are not the OS's code and are skipped.
 */
export async function checkHardening(
  rootDir: string,
  files: readonly PayloadFile[],
  arch: BuildArch,
  exceptions: readonly HardeningException[],
): Promise<HardeningReport> {
  const findings: HardeningFinding[] = [];
  let checkedFiles = 0;
  for (const file of files) {
    const onDisk = join(rootDir, file.path);
    const stats = await lstat(onDisk).catch(() => undefined);
    if (stats === undefined || !stats.isFile() || stats.size < 64 || !(await isElfFile(onDisk))) continue;
    const result = await failedChecks(onDisk);
    if (result === undefined || result.machine !== machineOf[arch]) continue;
    checkedFiles++;
    if (result.failed.length === 0) continue;
    const path = imagePath(file.path, arch);
    const finding: HardeningFinding = { rpm: file.rpm, path, kind: result.kind, failed: [], allowed: [] };
    for (const check of result.failed) {
      const exception = findException(exceptions, path, check);
      if (exception === undefined) finding.failed.push(check);
      else finding.allowed.push({ check, reason: exception.reason });
    }
    findings.push(finding);
  }
  return { checkedFiles, findings, passed: findings.every((finding) => finding.failed.length === 0) };
}

/** Exceptions name files as the image sees them, so one exception holds for every arch. */
export function imagePath(payloadPath: string, arch: BuildArch): string {
  const root = crossSysroot(arch);
  return payloadPath.startsWith(`${root}/`) ? payloadPath.slice(root.length) : payloadPath;
}

/** One line per failing file, for logs and error messages. */
export function describeFindings(findings: readonly HardeningFinding[]): string[] {
  return findings
    .filter((finding) => finding.failed.length > 0)
    .map((finding) => `${finding.path} (${finding.kind} in ${finding.rpm}): fails ${finding.failed.join(', ')}`);
}
