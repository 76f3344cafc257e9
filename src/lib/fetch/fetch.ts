// Fetches packages' external files into the lookaside cache: local cache, then mirrors in order, then upstream.
import { existsSync, readFileSync } from 'node:fs';
import { access, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { ListrTask } from 'listr2';
import { progressRenderer, runTasks, type ProgressMode } from '../cli/progress.ts';
import { BrlError, ExitCode, errnoCode } from '../core/errors.ts';
import { hashFile } from '../core/hash.ts';
import { brlInstallDir } from '../core/paths.ts';
import type { ExternalFile, PackageDefinition } from '../packages/manifest.ts';
import type { FetchConfig } from './config.ts';
import { resolveDebUrl } from './deb.ts';
import { resolveDebSrcUrl } from './deb-src.ts';
import { createDispatcher, defaultNetworkOptions, downloadVerified, SourceError, type NetworkOptions } from './download.ts';
import { lookasidePath, lookasideUrl } from './lookaside.ts';
import { resolveNpmTarball } from './npm.ts';

/**
 * `cache`: already in the local cache; `package-dir`: copied from `packages-specs/<pkg>/<file>`, where
 * Bottlerocket's buildsys leaves fetched files; `lookaside`: downloaded from a mirror; `upstream`: from
 * the file's own source.
 */
export type FetchSource = 'cache' | 'package-dir' | 'lookaside' | 'upstream';

export interface FetchedFile {
  packageName: string;
  file: ExternalFile;
  /** Absolute path in the local lookaside cache; its sha512 is `file.sha512`. */
  path: string;
  source: FetchSource;
  /** The URL the bytes came from; absent when they were already cached. */
  url?: string;
}

export interface FetchOptions {
  progress?: ProgressMode;
  /** Re-hash files already in the local cache and fetch again the ones that do not match. */
  verify?: boolean;
  network?: Partial<NetworkOptions>;
}

/** One file to fetch, shared by every package that pins the same name and sha512. */
interface FetchJob {
  file: ExternalFile;
  path: string;
  /** Packages pinning it: their directory, and the manifest that pins it (for error messages). */
  owners: { name: string; dir: string; manifestPath: string }[];
}

interface SourceAttempt {
  source: Exclude<FetchSource, 'cache'>;
  label: string;
  reason: string;
  mismatch?: { expected: string; actual: string };
}

const userAgent = `brl/${(JSON.parse(readFileSync(join(brlInstallDir, 'package.json'), 'utf8')) as { version: string }).version} fetch`;

/** Downloads in flight in this process, so concurrent callers share one download per cache path. */
const inFlight = new Map<string, Promise<{ source: FetchSource; url?: string }>>();

export async function fetchExternalFiles(
  packages: readonly PackageDefinition[],
  config: FetchConfig,
  options: FetchOptions = {},
): Promise<FetchedFile[]> {
  const jobs = new Map<string, FetchJob>();
  for (const pkg of packages) {
    for (const file of pkg.externalFiles) {
      const path = lookasidePath(config.cacheDir, file);
      const job = jobs.get(path) ?? { file, path, owners: [] };
      job.owners.push({ name: pkg.name, dir: pkg.dir, manifestPath: pkg.manifestPath });
      jobs.set(path, job);
    }
  }

  const outcomes = new Map<string, { source: FetchSource; url?: string }>();
  const pending: FetchJob[] = [];
  for (const job of jobs.values()) {
    if (await isCached(job, options.verify ?? false)) outcomes.set(job.path, { source: 'cache' });
    else pending.push(job);
  }

  const failures: { job: FetchJob; error: BrlError }[] = [];
  // listr2 only records these; they are rethrown as they are once every task has ended.
  const unexpected: unknown[] = [];
  if (pending.length > 0) {
    const network = { ...defaultNetworkOptions, ...options.network };
    const dispatcher = createDispatcher(network);
    const mode = options.progress ?? 'auto';
    const live = progressRenderer(mode) === 'default';
    const tasks: ListrTask[] = pending.map((job) => ({
      title: `${ownerNames(job)}: ${job.file.fileName}`,
      task: async (_context, task) => {
        let lastShown = 0;
        const onProgress = (received: number, total: number | undefined): void => {
          const now = Date.now();
          if (!live || now - lastShown < 200) return;
          lastShown = now;
          task.output = total === undefined ? formatBytes(received) : `${formatBytes(received)} of ${formatBytes(total)}`;
        };
        try {
          const outcome = await fetchOnce(job, config, { dispatcher, network, onProgress });
          outcomes.set(job.path, outcome);
          task.title = `${ownerNames(job)}: ${job.file.fileName} (${outcome.source}${outcome.url ? ` ${outcome.url}` : ''})`;
        } catch (caught) {
          const error = localWriteError(caught, job) ?? caught;
          if (!(error instanceof BrlError)) {
            unexpected.push(error);
            throw error;
          }
          failures.push({ job, error });
          // The full story is in the error thrown at the end; the task line only says what kind of failure.
          throw new Error(taskFailureSummary(error));
        }
      },
    }));
    try {
      await runTasks(tasks, { mode, concurrency: config.jobs, exitOnError: false });
    } finally {
      await dispatcher.close();
    }
  }
  if (unexpected.length > 0) throw unexpected[0];
  if (failures.length > 0) throw combineFailures(failures);

  const fetched: FetchedFile[] = [];
  for (const pkg of packages) {
    for (const file of pkg.externalFiles) {
      const path = lookasidePath(config.cacheDir, file);
      const outcome = outcomes.get(path);
      // Every job either succeeded or was reported above; a missing outcome is a bug (e.g. listr2 swallowed a throw).
      if (outcome === undefined) throw new Error(`no fetch outcome for ${path}`);
      fetched.push({ packageName: pkg.name, file, path, ...outcome });
    }
  }
  return fetched;
}

async function isCached(job: FetchJob, verify: boolean): Promise<boolean> {
  try {
    await access(job.path);
  } catch (error) {
    const code = errnoCode(error);
    if (code === 'ENOENT' || code === 'ENOTDIR') return false;
    throw error;
  }
  // Only verified bytes are ever renamed into place, so presence is proof unless asked to re-check.
  if (!verify) return true;
  if ((await hashFile(job.path, 'sha512')).hex === job.file.sha512) return true;
  await rm(job.path, { force: true });
  return false;
}

interface FetchContext {
  dispatcher: ReturnType<typeof createDispatcher>;
  network: NetworkOptions;
  onProgress: (received: number, total: number | undefined) => void;
}

function fetchOnce(job: FetchJob, config: FetchConfig, context: FetchContext): Promise<{ source: FetchSource; url?: string }> {
  const running = inFlight.get(job.path);
  if (running !== undefined) return running;
  const started = fetchFromSources(job, config, context).finally(() => inFlight.delete(job.path));
  inFlight.set(job.path, started);
  return started;
}

interface Candidate {
  source: Exclude<FetchSource, 'cache'>;
  /** How the source is named in errors: a path, a mirror URL, or the upstream source as written. */
  label: string;
  /** The URL to download; upstream `npm:`/`deb:` sources are resolved only when reached. */
  url: () => Promise<string>;
}

/** Bottlerocket's order: the package directory, each lookaside cache, then upstream only when allowed. */
async function fetchFromSources(job: FetchJob, config: FetchConfig, context: FetchContext): Promise<{ source: FetchSource; url?: string }> {
  const { file } = job;
  const candidates: Candidate[] = [];
  for (const owner of job.owners) {
    const localPath = join(owner.dir, file.fileName);
    if (existsSync(localPath)) candidates.push({ source: 'package-dir', label: localPath, url: async () => pathToFileURL(localPath).href });
  }
  for (const base of config.lookasideCaches) {
    const url = lookasideUrl(base, file);
    candidates.push({ source: 'lookaside', label: url, url: async () => url });
  }
  const upstreamAllowed = file.forceUpstream || config.upstreamFallback;
  if (upstreamAllowed) candidates.push({ source: 'upstream', label: file.url, url: () => upstreamUrl(job, config.cacheDir) });

  const attempts: SourceAttempt[] = [];
  for (const candidate of candidates) {
    let url: string | undefined;
    try {
      url = await candidate.url();
      await downloadVerified(url, job.path, {
        dispatcher: context.dispatcher,
        network: context.network,
        expectedSha512: file.sha512,
        userAgent,
        onProgress: context.onProgress,
      });
      return { source: candidate.source, url };
    } catch (error) {
      if (!(error instanceof SourceError)) throw error;
      const resolved = url !== undefined && url !== candidate.label && candidate.source === 'upstream' ? ` (${url})` : '';
      // A stale copy in the package directory is only passed over; a wrong digest from a server is the news.
      const mismatch = candidate.source === 'package-dir' ? undefined : error.mismatch;
      const reason = candidate.source === 'package-dir' && error.mismatch ? 'stale copy (different sha512), passed over' : error.message;
      attempts.push({ source: candidate.source, label: `${candidate.label}${resolved}`, reason, ...(mismatch ? { mismatch } : {}) });
    }
  }
  throw sourcesExhausted(job, attempts, upstreamAllowed);
}

function upstreamUrl(job: FetchJob, cacheDir: string): Promise<string> {
  const { file } = job;
  const manifestPath = job.owners.map((owner) => owner.manifestPath).join(', ');
  if (file.kind === 'npm') return resolveNpmTarball(file.url, file.sha512, { manifestPath });
  if (file.kind === 'deb') {
    return resolveDebUrl(file.url, {
      packageName: ownerNames(job),
      manifestPath,
      fileName: file.fileName,
    });
  }
  if (file.kind === 'deb-src') return resolveDebSrcUrl(file.url, { packageName: ownerNames(job), manifestPath, fileName: file.fileName, cacheDir });
  return Promise.resolve(file.url);
}

function sourcesExhausted(job: FetchJob, attempts: SourceAttempt[], upstreamAllowed: boolean): BrlError {
  const { file } = job;
  const subject = `${file.fileName} (package ${ownerNames(job)})`;
  const allowUpstream =
    'allow upstream with --upstream-fallback, `upstream-fallback = true` under [fetch] in brl.toml, or BUILDSYS_UPSTREAM_SOURCE_FALLBACK=true';
  if (attempts.length === 0) {
    return new BrlError(`${subject}: not in the local cache, no lookaside cache is configured and upstream fallback is off`, {
      hint: `add a lookaside cache (--lookaside-cache URL, or lookaside-caches under [fetch] in brl.toml), or ${allowUpstream}`,
      exitCode: ExitCode.network,
      code: 'NO_SOURCE',
    });
  }
  const tried = attempts.map((attempt) => `  ${attempt.source} ${attempt.label}: ${attempt.reason}`);
  if (!upstreamAllowed) tried.push(`  upstream ${file.url}: not tried (upstream fallback is off)`);
  const mismatch = attempts.find((attempt) => attempt.mismatch !== undefined);
  if (mismatch?.mismatch !== undefined) {
    return new BrlError(
      `sha512 mismatch for ${subject} from ${mismatch.label}: expected ${mismatch.mismatch.expected}, got ${mismatch.mismatch.actual}\n${tried.join('\n')}`,
      {
        hint: `the pin is in ${job.owners.map((owner) => owner.manifestPath).join(', ')}; if the source changed on purpose, check the new file and update sha512`,
        exitCode: ExitCode.verifyFailed,
        code: 'SHA512_MISMATCH',
      },
    );
  }
  return new BrlError(`could not fetch ${subject}:\n${tried.join('\n')}`, {
    hint: upstreamAllowed
      ? 'check the URLs and the network, or add a lookaside cache that holds the file'
      : `no lookaside cache had the file and upstream fallback is off: add a cache that has it, or ${allowUpstream}`,
    exitCode: ExitCode.network,
    code: 'FETCH_FAILED',
  });
}

function combineFailures(failures: { job: FetchJob; error: BrlError }[]): BrlError {
  // A wrong digest outranks a network failure: it is the one that needs a person to look.
  const ordered = [...failures].sort((a, b) => Number(b.error.code === 'SHA512_MISMATCH') - Number(a.error.code === 'SHA512_MISMATCH'));
  const first = ordered[0]!.error;
  if (ordered.length === 1) return first;
  const hints = [...new Set(ordered.map((failure) => failure.error.hint).filter((hint) => hint !== undefined))];
  return new BrlError(
    `could not fetch ${ordered.length} external files:\n${ordered.map((failure) => `- ${failure.error.message}`).join('\n')}`,
    { hint: hints.join('\n'), exitCode: first.exitCode, code: first.code },
  );
}

/** A cache directory brl cannot write to is the user's to fix, not a bug. */
function localWriteError(error: unknown, job: FetchJob): BrlError | undefined {
  const code = errnoCode(error);
  if (code === undefined || !['EACCES', 'EPERM', 'EROFS', 'ENOSPC', 'EDQUOT', 'ENOTDIR', 'EEXIST'].includes(code)) return undefined;
  const path = typeof (error as { path?: unknown }).path === 'string' ? (error as { path: string }).path : job.path;
  return new BrlError(`cannot write ${job.file.fileName} into the lookaside cache: ${code} on ${path}`, {
    hint: 'free space or fix permissions there, or choose another directory with --cache-dir or cache-dir under [fetch] in brl.toml',
    exitCode: ExitCode.failure,
    code: 'CACHE_NOT_WRITABLE',
    cause: error,
  });
}

function taskFailureSummary(error: BrlError): string {
  if (error.code === 'SHA512_MISMATCH') return 'sha512 mismatch';
  if (error.code === 'NO_SOURCE') return 'no source allowed';
  if (error.code.startsWith('DEB_')) return 'version not available from apt';
  if (error.code.startsWith('NPM_')) return 'version not on the npm registry';
  return 'no source delivered it';
}

function ownerNames(job: FetchJob): string {
  return job.owners.map((owner) => owner.name).join(', ');
}

function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(0)} KiB`;
  return `${(bytes / (1024 * 1024)).toFixed(1)} MiB`;
}
