// The RPM macros brl defines for every spec, the dist tag, and the build's SOURCE_DATE_EPOCH.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

export const buildArches = ['x86_64', 'aarch64'] as const;
export type BuildArch = (typeof buildArches)[number];

/** Where the build directory appears inside the sandbox: fixed, so no random path leaks into outputs. */
export const sandboxBuildDir = '/tmp/brl-build';
/**
 * Where a package's source groups appear (read-only) inside the sandbox: `%{_cross_sourcesdir}/<group>`.
 * Defined on rpmbuild's command line only for packages with source groups, so the macro file (and
 * with it every other package's cache key) is unchanged.
 */
export const sandboxSourcesDir = `${sandboxBuildDir}/sources`;
/** The rpm root that build dependencies are installed into, inside the build directory. */
export const sandboxDependencyRoot = `${sandboxBuildDir}/sysroot`;

/** The package-name prefix, as in Bottlerocket's SDK, so existing specs and rich dependencies keep working. */
export const crossOs = 'bottlerocket-';

/** Hardening flags every C/C++ build gets from `%set_cross_build_flags` (the OS's security promise). */
export const hardeningCflags = '-O2 -pipe -fPIE -fstack-protector-strong -fstack-clash-protection -D_FORTIFY_SOURCE=2 -Wformat -Werror=format-security';
export const hardeningLdflags = '-pie -Wl,-z,relro -Wl,-z,now -Wl,-z,noexecstack';

/**
 * The time stamp outside git. rpm ignores SOURCE_DATE_EPOCH=0 when clamping file mtimes, so the
 * earliest time it honours is 1.
 */
export const fallbackEpoch = 1;

export interface SourceStamp {
  /** HEAD commit time (seconds since the epoch), or `fallbackEpoch` outside git. */
  commitEpoch: number;
  /** Abbreviated HEAD commit, or `local` outside git. */
  shortSha: string;
  /** `.<commit-epoch>.<short-sha>.br1`, Bottlerocket's dist tag with brl's suffix. */
  dist: string;
  /** SOURCE_DATE_EPOCH for builds: the environment's if set, else the commit time; at least 1. */
  sourceDateEpoch: number;
}

/** Reads HEAD of the git repository holding `projectDir`; outside git the stamp is `.1.local.br1`. */
export async function readSourceStamp(projectDir: string, env: NodeJS.ProcessEnv = process.env): Promise<SourceStamp> {
  let commitEpoch = fallbackEpoch;
  let shortSha = 'local';
  try {
    const { stdout } = await execFileAsync('git', ['-C', projectDir, 'log', '-1', '--format=%ct %h'], { env: { ...env, LC_ALL: 'C' } });
    const [epoch, sha] = stdout.trim().split(' ');
    if (epoch !== undefined && sha !== undefined && /^\d+$/.test(epoch) && /^[0-9a-f]+$/.test(sha)) {
      commitEpoch = Number(epoch);
      shortSha = sha;
    }
  } catch {
    // Not a git checkout (or no git): the fixed fallback stamp keeps builds reproducible.
  }
  const fromEnv = env.SOURCE_DATE_EPOCH;
  const sourceDateEpoch = Math.max(fallbackEpoch, fromEnv !== undefined && /^\d+$/.test(fromEnv) ? Number(fromEnv) : commitEpoch);
  return { commitEpoch, shortSha, dist: `.${commitEpoch}.${shortSha}.br1`, sourceDateEpoch };
}

/** The target triple brl builds for; the vendor part matches Bottlerocket's SDK. */
export function crossTriple(arch: BuildArch): string {
  return `${arch}-bottlerocket-linux-gnu`;
}

/**
 * Bottlerocket's sysroot, `/<triple>/sys-root`: packages install under it, and the build
 * dependencies' files appear at this same path inside the sandbox.
 */
export function crossSysroot(arch: BuildArch): string {
  return `/${crossTriple(arch)}/sys-root`;
}

/** The C compiler for `arch` on this host: native gcc, else Debian's cross compiler. */
export function crossCompiler(arch: BuildArch, hostArch: string = process.arch === 'arm64' ? 'aarch64' : 'x86_64'): string {
  return arch === hostArch ? 'gcc' : `${arch}-linux-gnu-gcc`;
}

/**
 * Every macro brl defines, as `[name, value]` pairs in a fixed order. The dist tag is left out:
 * it goes on the rpmbuild command line so it can change without changing the cache key.
 */
export function specMacros(arch: BuildArch): Array<[string, string]> {
  const root = crossSysroot(arch);
  const prefix = `${root}/usr`;
  return [
    // Build tree inside the sandbox.
    ['_topdir', sandboxBuildDir],
    ['_tmppath', `${sandboxBuildDir}/tmp`],
    ['_dbpath', `${sandboxDependencyRoot}/var/lib/rpm`],
    // Reproducibility: rpm takes build time and file mtimes from SOURCE_DATE_EPOCH.
    ['_buildhost', 'brl-build'],
    ['use_source_date_epoch_as_buildtime', '1'],
    ['clamp_mtime_to_source_date_epoch', '1'],
    ['source_date_epoch_from_changelog', '0'],
    ['_binary_payload', 'w1.zstdio'],
    ['_build_id_links', 'none'],
    ['debug_package', '%{nil}'],
    // Bottlerocket SDK names; every path is under the sysroot, as upstream's SDK lays them out.
    ['_cross_os', crossOs],
    ['_cross_arch', arch],
    ['_cross_triple', crossTriple(arch)],
    ['_cross_target', crossTriple(arch)],
    ['_cross_sysroot', root],
    ['_cross_rootdir', root],
    ['_cross_cc', crossCompiler(arch)],
    ['_cross_prefix', prefix],
    ['_cross_exec_prefix', prefix],
    ['_cross_bindir', `${prefix}/bin`],
    ['_cross_sbindir', `${prefix}/sbin`],
    ['_cross_libdir', `${prefix}/lib`],
    ['_cross_libexecdir', `${prefix}/libexec`],
    ['_cross_includedir', `${prefix}/include`],
    ['_cross_datadir', `${prefix}/share`],
    ['_cross_docdir', `${prefix}/share/doc`],
    ['_cross_mandir', `${prefix}/share/man`],
    ['_cross_licensedir', `${prefix}/share/licenses`],
    ['_cross_factorydir', `${prefix}/share/factory`],
    ['_cross_templatedir', `${prefix}/share/templates`],
    ['_cross_unitdir', `${prefix}/lib/systemd/system`],
    ['_cross_tmpfilesdir', `${prefix}/lib/tmpfiles.d`],
    ['_cross_sysusersdir', `${prefix}/lib/sysusers.d`],
    ['_cross_sysctldir', `${prefix}/lib/sysctl.d`],
    ['_cross_udevrulesdir', `${prefix}/lib/udev/rules.d`],
    ['_cross_modulesloaddir', `${prefix}/lib/modules-load.d`],
    ['_cross_sysconfdir', `${root}/etc`],
    ['_cross_localstatedir', `${root}/var`],
    ['_cross_sharedstatedir', `${root}/var/lib`],
    ['_cross_rundir', `${root}/run`],
    ['_cross_bootdir', `${root}/boot`],
    ['_cross_bootconfigdir', `${root}/boot/boot-config.d`],
    ['_cross_attribution_file', '%{_cross_licensedir}/%{name}/attribution.txt'],
    ['_cross_cflags', hardeningCflags],
    ['_cross_ldflags', hardeningLdflags],
    ['set_cross_build_flags', 'export CC="%{_cross_cc}" CFLAGS="%{_cross_cflags}" CXXFLAGS="%{_cross_cflags}" LDFLAGS="%{_cross_ldflags}"'],
  ];
}

/** The macros as an rpm macro file (`%name value` per line). */
export function renderMacroFile(macros: ReadonlyArray<[string, string]>): string {
  return `${macros.map(([name, value]) => `%${name} ${value}`).join('\n')}\n`;
}
