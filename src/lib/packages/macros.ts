// The RPM macros brl defines for every spec, the dist tag, and the packages' SOURCE_DATE_EPOCH.

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
 * SOURCE_DATE_EPOCH of every package build, whatever the commit or the environment: 1980-01-01
 * 00:00:00 UTC, the earliest time ZIP (and so wheels, jars, FAT) can store. A package's bytes then
 * depend only on what its cache key covers, so a cached RPM is exactly what a rebuild would make;
 * the commit's time stamps the images instead (src/lib/variant, build-identity.ts).
 */
export const packageSourceDateEpoch = 315532800;

/** How the dist tag is made from the cache key; part of the key, so a new form misses old outputs. */
export const distTagForm = '.<first 12 hex digits of the cache key>.br1';

/**
 * `%dist` for a package: Bottlerocket's `.br1` suffix after the start of the package's cache key
 * (upstream puts the commit time and id there), so equal inputs give equal releases and any
 * changed input a new one, and `.brl-build.json` (holding the key) says where an RPM came from.
 */
export function distTag(key: string): string {
  return `.${key.slice(0, 12)}.br1`;
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
 * it is made from the cache key, so it goes on the rpmbuild command line.
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
    ...crossBinutilsMacros(arch),
  ];
}

/**
 * rpm's post-install steps strip and read ELF files with the host's binutils, which do not know
 * another machine's format: a cross build uses Debian's cross binutils (`<arch>-linux-gnu-strip`).
 * Native builds define nothing, so their macro file stays what it was.
 */
function crossBinutilsMacros(arch: BuildArch): Array<[string, string]> {
  const compiler = crossCompiler(arch);
  if (compiler === 'gcc') return [];
  const prefix = compiler.slice(0, -'gcc'.length);
  return [
    ['__strip', `/usr/bin/${prefix}strip`],
    ['__objdump', `/usr/bin/${prefix}objdump`],
  ];
}

/** The macros as an rpm macro file (`%name value` per line). */
export function renderMacroFile(macros: ReadonlyArray<[string, string]>): string {
  return `${macros.map(([name, value]) => `%${name} ${value}`).join('\n')}\n`;
}
