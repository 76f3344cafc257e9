// `brl build package`: builds packages in build-dependency order, N at a time, each in a sandbox, reusing cached outputs.
import { execFile } from 'node:child_process';
import { copyFile, constants as fsConstants, mkdir, mkdtemp, open, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { promisify } from 'node:util';
import type { ListrTask } from 'listr2';
import { runTasks, type ProgressMode } from '../cli/progress.ts';
import { BrlError, ExitCode, isBrlError } from '../core/errors.ts';
import { hashFile } from '../core/hash.ts';
import { requireHostTools } from '../doctor/doctor.ts';
import type { FetchConfig } from '../fetch/index.ts';
import { loadBuildConfig } from './build-config.ts';
import { cacheKey, changedInputs, collectInputs, listLocalSources } from './cache-key.ts';
import { FileDigestMemo } from './digest-memo.ts';
import { dependencyClosure, resolveBuildGraph, type BuildGraph } from './graph.ts';
import { acquireLock } from './lock.ts';
import { checkHardening, describeFindings, type HardeningReport, type PayloadFile } from './hardening.ts';
import { externalFilesFor, packageArches, requireArch } from './arches.ts';
import { buildArches, crossCompiler, crossTriple, distTag, packageSourceDateEpoch, renderMacroFile, sandboxBuildDir, sandboxSourcesDir, specMacros, type BuildArch } from './macros.ts';
import { loadAllPackages, loadPackage, type PackageDefinition } from './manifest.ts';
import { lockPath, logPath, outputsIntact, readBuildRecord, replaceOutputs, rpmsDir, workRoot, type BuildRecord } from './outputs.ts';
import { installIntoSysroot, isRegularFile, listPayload } from './rpm.ts';
import { runSandboxed, writeSandboxEtc } from './sandbox.ts';

const execFileAsync = promisify(execFile);

export type BuildStatus = 'built' | 'cached' | 'failed';

export interface BuildPackagesOptions {
  /** Packages to build (with their build dependencies); ignored when `all` is set. */
  names?: string[];
  all?: boolean;
  arch?: BuildArch;
  /** Builds at once; default from brl.toml `[build] jobs`, else the CPU count. */
  jobs?: number;
  progress?: ProgressMode;
  /** Rebuild even when the cache holds outputs for the same inputs. */
  force?: boolean;
  /** Lines of a failed build's log to return. */
  logTailLines?: number;
}

export interface PackageBuildResult {
  name: string;
  status: BuildStatus;
  /** Absolute paths of the package's RPMs (empty when it failed). */
  rpms: string[];
  /** The RPMs' dist tag, `.<start of the cache key>.br1` (absent when it failed). */
  dist?: string;
  logPath: string;
  durationMs: number;
  /** Why it was rebuilt: the inputs that changed since the cached build, or `no previous build`. */
  rebuildReasons?: string[];
  /** Hardening failures an exception in package.toml allowed. */
  allowedHardening?: Array<{ path: string; check: string; reason: string }>;
  /** Why it failed. */
  error?: string;
  /** The end of the build log, for failures. */
  logTail?: string[];
}

export interface BuildPackagesResult {
  arch: BuildArch;
  packages: PackageBuildResult[];
}

interface BuildContext {
  projectDir: string;
  arch: BuildArch;
  graph: BuildGraph;
  toolchain: string;
  macroFile: string;
  /** Loaded on first use: a run where everything is cached never loads the fetch code. */
  fetchConfig: () => Promise<FetchConfig>;
  force: boolean;
  logTailLines: number;
  results: Map<string, PackageBuildResult>;
  digests: FileDigestMemo;
}

export async function buildPackages(projectDir: string, options: BuildPackagesOptions): Promise<BuildPackagesResult> {
  const arch = options.arch ?? 'x86_64';
  if (!buildArches.includes(arch)) {
    throw new BrlError(`unsupported arch "${arch}"`, { hint: `use one of: ${buildArches.join(', ')}`, exitCode: ExitCode.usage, code: 'BAD_ARCH' });
  }
  const definitions = await loadAllPackages(projectDir);
  // --all is every package that builds for the arch.
  const selected = options.all
    ? definitions.filter((definition) => packageArches(definition).includes(arch)).map((definition) => definition.name)
    : (options.names ?? []);
  if (selected.length === 0) {
    throw new BrlError(options.all ? `no package builds for ${arch}` : 'no packages to build', {
      hint: options.all ? `add packages under packages-specs/, or list ${arch} in a package's arches` : 'name packages to build, or pass --all',
      exitCode: ExitCode.usage,
      code: 'NO_PACKAGES',
    });
  }
  // A named package outside the list gets loadPackage's own error: unknown (with the known ones) or its missing spec.
  for (const name of selected) {
    if (!definitions.some((definition) => definition.name === name)) await loadPackage(projectDir, name);
  }
  const graph = resolveBuildGraph(definitions, selected);
  requireArch(graph.order, arch, (name) => (selected.includes(name) ? undefined : selected.find((root) => dependencyClosure(graph, root).includes(name))));
  requireHostTools(['rpmbuild', 'rpm', 'bwrap', ...(await crossToolsNeeded(graph.order, arch))]);
  const [{ jobs }, toolchain, digests] = await Promise.all([
    loadBuildConfig(projectDir, options.jobs === undefined ? {} : { jobs: options.jobs }),
    toolchainIdentity(arch),
    FileDigestMemo.load(projectDir),
  ]);
  const context: BuildContext = {
    projectDir,
    arch,
    graph,
    toolchain,
    macroFile: renderMacroFile(specMacros(arch)),
    fetchConfig: once(async () => (await import('../fetch/index.ts')).loadFetchConfig(projectDir)),
    force: options.force ?? false,
    logTailLines: options.logTailLines ?? 40,
    results: new Map(),
    digests,
  };

  const slots = new Semaphore(jobs);
  // One settled-once promise per package, created before any task runs, so dependents can wait on it.
  const finished = new Map<string, { promise: Promise<PackageBuildResult>; resolve: (result: PackageBuildResult) => void }>();
  for (const definition of graph.order) {
    let resolve: (result: PackageBuildResult) => void = () => undefined;
    const promise = new Promise<PackageBuildResult>((settle) => (resolve = settle));
    finished.set(definition.name, { promise, resolve });
  }
  const outcomeOf = (name: string): Promise<PackageBuildResult> => (finished.get(name) as { promise: Promise<PackageBuildResult> }).promise;
  const tasks: ListrTask[] = graph.order.map((definition) => ({
    title: definition.name,
    task: async (_context, task) => {
      const run = async (): Promise<PackageBuildResult> => {
        const dependencies = graph.dependencies.get(definition.name) ?? [];
        if (dependencies.length > 0) task.title = `${definition.name}: waiting for ${dependencies.join(', ')}`;
        const dependencyResults = await Promise.all(dependencies.map(outcomeOf));
        const failedDependency = dependencyResults.find((result) => result.status === 'failed');
        if (failedDependency !== undefined) {
          return failure(context, definition.name, 0, `not built: build dependency "${failedDependency.name}" failed`, false);
        }
        await slots.acquire();
        const report = (title: string): void => {
          task.title = `${definition.name}: ${title}`;
        };
        // Another brl process may be building the same package; wait for it, then likely find it cached.
        const unlock = await acquireLock(lockPath(projectDir, arch, definition.name), (pid) => report(`waiting for process ${pid}`));
        try {
          report('checking cache');
          return await buildOne(context, definition, report);
        } finally {
          await unlock();
          slots.release();
        }
      };
      const result = await run().catch((error: unknown) =>
        failure(context, definition.name, 0, error instanceof Error ? error.message : String(error), false),
      );
      context.results.set(definition.name, result);
      finished.get(definition.name)?.resolve(result);
      if (result.status === 'failed') throw new Error(`${definition.name}: ${result.error ?? 'failed'}`);
      task.title = `${definition.name}: ${result.status}${result.status === 'built' ? ` in ${(result.durationMs / 1000).toFixed(1)} s` : ''}`;
    },
  }));
  // Listr starts every task at once; the semaphore is what limits builds to `jobs`.
  await runTasks(tasks, { mode: options.progress ?? 'auto', concurrency: Math.max(tasks.length, 2), exitOnError: false });
  await digests.save(projectDir);

  return {
    arch,
    packages: graph.order.map((definition) => context.results.get(definition.name) as PackageBuildResult),
  };
}

/** Builds one package, or reuses its outputs when the cache key matches. Never throws for a failed build. */
async function buildOne(context: BuildContext, definition: PackageDefinition, report: (title: string) => void): Promise<PackageBuildResult> {
  const started = performance.now();
  const { projectDir, arch } = context;
  const outputDir = rpmsDir(projectDir, arch, definition.name);
  const closure = dependencyClosure(context.graph, definition.name);
  const dependencyRecords = new Map<string, BuildRecord>();
  for (const name of closure) {
    let record = await readBuildRecord(rpmsDir(projectDir, arch, name));
    if (record === undefined) {
      // Another process is swapping in new outputs for it: wait until it is done.
      const unlock = await acquireLock(lockPath(projectDir, arch, name));
      record = await readBuildRecord(rpmsDir(projectDir, arch, name));
      await unlock();
    }
    if (record === undefined) throw new Error(`build record of "${name}" vanished while building "${definition.name}"`);
    dependencyRecords.set(name, record);
  }
  const inputs = await collectInputs(definition, {
    arch,
    toolchain: context.toolchain,
    macroFile: context.macroFile,
    digests: context.digests,
    dependencyRpms: Object.fromEntries(
      [...dependencyRecords].map(([name, record]) => [name, Object.fromEntries(record.rpms.map((rpm) => [rpm.file, rpm.sha256]))]),
    ),
  });
  const key = cacheKey(inputs);
  const dist = distTag(key);
  const previous = await readBuildRecord(outputDir);
  const log = logPath(projectDir, arch, definition.name);
  if (!context.force && previous?.key === key && (await outputsIntact(outputDir, previous))) {
    return {
      name: definition.name,
      status: 'cached',
      rpms: previous.rpms.map((rpm) => join(outputDir, rpm.file)),
      dist,
      logPath: log,
      durationMs: performance.now() - started,
      allowedHardening: previous.allowedHardening,
    };
  }
  const rebuildReasons = context.force ? ['forced'] : previous === undefined ? ['no previous build'] : changedInputs(previous.inputs, inputs);
  if (rebuildReasons.length === 0) rebuildReasons.push('outputs missing or changed');

  await mkdir(dirname(log), { recursive: true });
  const logHandle = await open(log, 'w');
  const note = (line: string): Promise<void> => logHandle.write(`[brl] ${line}\n`).then(() => undefined);
  const root = workRoot(projectDir, arch);
  await removeStaleWorkDirs(root, definition.name);
  await mkdir(root, { recursive: true });
  const work = await mkdtemp(join(root, `${definition.name}-`));
  try {
    await note(`building ${definition.name} for ${arch}, key ${key}`);
    await note(`why: ${rebuildReasons.join('; ')}`);
    await note(`work directory: ${work} (mounted at ${sandboxBuildDir} in the sandbox)`);
    for (const dir of ['SOURCES', 'SPECS', 'BUILD', 'BUILDROOT', 'RPMS', 'SRPMS', 'tmp', 'home']) await mkdir(join(work, dir));

    await stageSources(context, definition, work, report, note);
    report('installing build dependencies');
    const dependencyRpms = closure.flatMap((name) =>
      (dependencyRecords.get(name) as BuildRecord).rpms.map((rpm) => join(rpmsDir(projectDir, arch, name), rpm.file)),
    );
    await note(`sysroot: ${dependencyRpms.length === 0 ? 'empty' : dependencyRpms.map((rpm) => basename(rpm)).join(', ')}`);
    const installOutput = await installIntoSysroot(join(work, 'sysroot'), dependencyRpms);
    if (installOutput !== '') await logHandle.write(installOutput);
    // The dependencies' files sit under /<triple>/sys-root in their RPMs; the sandbox shows them there.
    const dependencyTree = join(work, 'sysroot', crossTriple(arch));
    await mkdir(join(dependencyTree, 'sys-root'), { recursive: true });

    // Source groups are bound read-only where the spec finds them; their mount points are made here.
    const sourceGroups = definition.sourceGroups ?? [];
    for (const group of sourceGroups) await mkdir(join(work, 'sources', group), { recursive: true });
    if (sourceGroups.length > 0) await note(`source groups: ${sourceGroups.join(', ')} (at ${sandboxSourcesDir})`);

    report('rpmbuild');
    const exitCode = await runSandboxed(
      {
        buildDir: work,
        etcDir: await writeSandboxEtc(join(work, 'sandbox-etc')),
        readOnlyBinds: [
          { source: dependencyTree, target: `/${crossTriple(arch)}` },
          ...sourceGroups.map((group) => ({ source: join(projectDir, group), target: `${sandboxSourcesDir}/${group}` })),
        ],
        env: { SOURCE_DATE_EPOCH: String(packageSourceDateEpoch) },
        logFd: logHandle.fd,
      },
      [
        'rpmbuild', '-bb', '--noclean',
        '--target', arch,
        '--define', `dist ${dist}`,
        ...(sourceGroups.length > 0 ? ['--define', `_cross_sourcesdir ${sandboxSourcesDir}`] : []),
        `${sandboxBuildDir}/SPECS/${basename(definition.specPath)}`,
      ],
    );
    if (exitCode !== 0) {
      await note(`rpmbuild exited with ${exitCode}`);
      await logHandle.close();
      const explained = await explainFailure(log, definition.specPath, arch);
      return failure(context, definition.name, started, explained ?? `rpmbuild failed (exit ${exitCode}); work directory kept at ${work}`, true, rebuildReasons);
    }

    report('hardening check');
    const rpmPaths = await findRpms(join(work, 'RPMS'));
    if (rpmPaths.length === 0) throw new BrlError(`${definition.specPath}: rpmbuild produced no RPMs`, { exitCode: ExitCode.buildFailed });
    const hardening = await checkPayloadHardening(rpmPaths, await buildRootOf(work), arch, definition);
    await note(`hardening: ${hardening.checkedFiles} ELF files checked`);
    const allowedHardening = hardening.findings.flatMap((finding) =>
      finding.allowed.map((allowed) => ({ path: finding.path, check: allowed.check, reason: allowed.reason })),
    );
    for (const allowed of allowedHardening) await note(`hardening: ${allowed.path} skips ${allowed.check}: ${allowed.reason}`);
    if (!hardening.passed) {
      const lines = describeFindings(hardening.findings);
      for (const line of lines) await note(`hardening: ${line}`);
      await logHandle.close();
      return failure(
        context,
        definition.name,
        started,
        `hardening check failed:\n  ${lines.join('\n  ')}\n  fix the build flags, or allow it in ${definition.manifestPath} with [[hardening-exceptions]] file, checks and reason`,
        true,
        rebuildReasons,
      );
    }

    const rpms = await Promise.all(
      rpmPaths.map(async (rpm) => {
        const { hex, bytes } = await hashFile(rpm);
        return { file: basename(rpm), sha256: hex, size: bytes };
      }),
    );
    rpms.sort((a, b) => (a.file < b.file ? -1 : 1));
    await replaceOutputs(outputDir, rpmPaths, {
      key,
      inputs,
      rpms,
      dist,
      sourceDateEpoch: packageSourceDateEpoch,
      allowedHardening,
    });
    await note(`wrote ${rpms.map((rpm) => rpm.file).join(', ')} to ${outputDir}`);
    await logHandle.close();
    await rm(work, { recursive: true, force: true });
    return {
      name: definition.name,
      status: 'built',
      rpms: rpms.map((rpm) => join(outputDir, rpm.file)),
      dist,
      logPath: log,
      durationMs: performance.now() - started,
      rebuildReasons,
      allowedHardening,
    };
  } catch (error) {
    const message = isBrlError(error) ? `${error.message}${error.hint ? ` (${error.hint})` : ''}` : String(error instanceof Error ? error.stack : error);
    await logHandle.write(`[brl] error: ${message}\n`).catch(() => undefined);
    await logHandle.close().catch(() => undefined);
    return failure(context, definition.name, started, isBrlError(error) ? message : `${error instanceof Error ? error.message : String(error)}`, true, rebuildReasons);
  }
}

/** SOURCES gets the external files (fetched into the lookaside cache first) and the local sources; SPECS the spec. */
async function stageSources(
  context: BuildContext,
  definition: PackageDefinition,
  work: string,
  report: (title: string) => void,
  note: (line: string) => Promise<void>,
): Promise<void> {
  const externalFiles = externalFilesFor(definition, context.arch);
  if (externalFiles.length > 0) {
    report('fetching');
    const { fetchExternalFiles } = await import('../fetch/index.ts');
    const fetched = await fetchExternalFiles([{ ...definition, externalFiles }], await context.fetchConfig(), { progress: 'silent' });
    for (const file of fetched) {
      // A copy, not a link: the build may write to SOURCES, and must not touch the cache.
      await copyFile(file.path, join(work, 'SOURCES', file.file.fileName), fsConstants.COPYFILE_FICLONE);
      await note(`external file ${file.file.fileName} (${file.source})`);
    }
  }
  for (const rel of await listLocalSources(definition)) {
    await mkdir(dirname(join(work, 'SOURCES', rel)), { recursive: true });
    await copyFile(join(definition.dir, rel), join(work, 'SOURCES', rel));
  }
  await copyFile(definition.specPath, join(work, 'SPECS', basename(definition.specPath)));
  // ~/.rpmmacros is read after the platform macros (also when --target reloads them), so brl's win.
  await writeFile(join(work, 'home', '.rpmmacros'), context.macroFile);
}

/** The hardening check over every regular file the produced RPMs list, read from the build root. */
async function checkPayloadHardening(
  rpmPaths: readonly string[],
  buildRoot: string,
  arch: BuildArch,
  definition: PackageDefinition,
): Promise<HardeningReport> {
  const payload: PayloadFile[] = [];
  for (const rpm of rpmPaths) {
    for (const entry of await listPayload(rpm)) if (isRegularFile(entry.mode)) payload.push({ rpm: basename(rpm), path: entry.path });
  }
  return checkHardening(buildRoot, payload, arch, definition.hardeningExceptions);
}

async function failure(
  context: BuildContext,
  name: string,
  started: number,
  error: string,
  hasLog: boolean,
  rebuildReasons?: string[],
): Promise<PackageBuildResult> {
  const log = logPath(context.projectDir, context.arch, name);
  return {
    name,
    status: 'failed',
    rpms: [],
    logPath: log,
    durationMs: started === 0 ? 0 : performance.now() - started,
    error,
    ...(rebuildReasons === undefined ? {} : { rebuildReasons }),
    ...(hasLog ? { logTail: await logTail(log, context.logTailLines) } : {}),
  };
}

/** The last `lines` lines of a log, reading at most its last 64 KiB. */
export async function logTail(path: string, lines: number): Promise<string[]> {
  const handle = await open(path, 'r').catch(() => undefined);
  if (handle === undefined) return [];
  try {
    const { size } = await handle.stat();
    const length = Math.min(size, 64 * 1024);
    const buffer = Buffer.alloc(length);
    await handle.read(buffer, 0, length, size - length);
    const all = buffer.toString('utf8').split('\n');
    if (all.at(-1) === '') all.pop();
    return all.slice(-lines);
  } finally {
    await handle.close();
  }
}

/**
 * A one-line reason for the commonest rpmbuild failures, from its log: spec mistakes
 * (`error: line N: …` becomes `<spec>:N: …`), an arch the spec excludes, unmet BuildRequires and a
 * missing cross compiler.
 */
async function explainFailure(log: string, specPath: string, arch: BuildArch): Promise<string | undefined> {
  const lines = await logTail(log, 400);
  for (const line of lines) {
    const specLine = /^error: line (\d+): (.*)$/.exec(line);
    if (specLine) return `${specPath}:${specLine[1]}: ${specLine[2]}`;
    if (/^error: Architecture is not included: /.test(line)) return `${specPath}: does not build for ${arch} (ExclusiveArch or ExcludeArch)`;
    if (/^error: Failed build dependencies:/.test(line)) {
      const missing = lines.slice(lines.indexOf(line) + 1).filter((next) => /^\s+\S.* is needed by /.test(next)).map((next) => next.trim().split(' is needed by ')[0]);
      return `${specPath}: BuildRequires not installed in the sysroot: ${missing.join(', ')} (list the packages providing them in build-dependencies in package.toml)`;
    }
  }
  const compiler = crossCompiler(arch);
  if (compiler !== 'gcc' && lines.some((line) => line.includes(`${compiler}: not found`))) {
    return `the ${arch} cross compiler ${compiler} is not installed (apt-get install gcc-${arch.replace('_', '-')}-linux-gnu)`;
  }
  return undefined;
}

async function findRpms(dir: string): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile() && entry.name.endsWith('.rpm')) found.push(join(entry.parentPath, entry.name));
  }
  return found.sort();
}

/** rpmbuild --noclean keeps the one build root it packaged from. */
async function buildRootOf(work: string): Promise<string> {
  const roots = (await readdir(join(work, 'BUILDROOT'), { withFileTypes: true })).filter((entry) => entry.isDirectory());
  if (roots.length !== 1) throw new Error(`expected one build root in ${join(work, 'BUILDROOT')}, found ${roots.length}`);
  return join(work, 'BUILDROOT', (roots[0] as { name: string }).name);
}

async function removeStaleWorkDirs(root: string, name: string): Promise<void> {
  const entries = await readdir(root).catch(() => [] as string[]);
  for (const entry of entries) {
    if (entry.startsWith(`${name}-`) && entry.length === name.length + 7) await rm(join(root, entry), { recursive: true, force: true });
  }
}

/**
 * The cross compiler and strip (rpm's brp-strip), when building for another arch than the machine's
 * and a spec compiles C (uses `%{_cross_cc}` or `%set_cross_build_flags`): missing, they are a
 * MISSING_HOST_TOOL error with the apt-get line, before anything is fetched.
 */
async function crossToolsNeeded(definitions: readonly PackageDefinition[], arch: BuildArch): Promise<string[]> {
  const compiler = crossCompiler(arch);
  if (compiler === 'gcc') return [];
  for (const definition of definitions) {
    if (/%\{?(_cross_cc|set_cross_build_flags)\b/.test(await readFile(definition.specPath, 'utf8'))) return [compiler, `${compiler.slice(0, -'gcc'.length)}strip`];
  }
  return [];
}

const toolchains = new Map<BuildArch, Promise<string>>();

/** rpmbuild's and the C compiler's versions: a toolchain upgrade changes every cache key. */
function toolchainIdentity(arch: BuildArch): Promise<string> {
  let identity = toolchains.get(arch);
  if (identity === undefined) {
    identity = (async () => {
      const describe = async (command: string, args: string[]): Promise<string> =>
        execFileAsync(command, args).then(
          ({ stdout }) => stdout.trim().replace(/\s+/g, ' '),
          () => `${command} missing`,
        );
      const cc = crossCompiler(arch);
      return `${await describe('rpmbuild', ['--version'])}; ${cc} ${await describe(cc, ['-dumpfullversion', '-dumpmachine'])}`;
    })();
    toolchains.set(arch, identity);
  }
  return identity;
}

function once<T>(make: () => Promise<T>): () => Promise<T> {
  let value: Promise<T> | undefined;
  return () => (value ??= make());
}

/** Counts builds in flight. */
class Semaphore {
  private available: number;
  private readonly waiting: Array<() => void> = [];
  constructor(size: number) {
    this.available = size;
  }
  async acquire(): Promise<void> {
    if (this.available > 0) {
      this.available--;
      return;
    }
    await new Promise<void>((resolve) => this.waiting.push(resolve));
  }
  release(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.available++;
  }
}
