import { Args, Flags } from '@oclif/core';
import { BrlCommand } from '../lib/cli/base-command.ts';
import { findProjectDir } from '../lib/core/paths.ts';
import { fetchExternalFiles, loadFetchConfig, type FetchedFile } from '../lib/fetch/index.ts';
import { loadAllPackages, loadPackage } from '../lib/packages/manifest.ts';

export interface FetchResult {
  cacheDir: string;
  lookasideCaches: string[];
  upstreamFallback: boolean;
  files: FetchedFile[];
}

export default class Fetch extends BrlCommand<FetchResult> {
  static override summary = 'Download the external files of packages into the lookaside cache.';
  static override description = [
    'Each file is pinned by sha512 and stored as <cache-dir>/<file>/<sha512>/<file>.',
    'Lookaside caches are tried in order; upstream (the URL, the npm registry or the apt sources) only for force-upstream files or with upstream fallback on.',
    'Settings come from [fetch] in brl.toml, then BRL_LOOKASIDE_CACHE and BUILDSYS_UPSTREAM_SOURCE_FALLBACK, then these flags.',
  ].join('\n\n');

  static override examples = [
    '<%= config.bin %> fetch',
    '<%= config.bin %> fetch hello kernel',
    '<%= config.bin %> fetch --lookaside-cache https://mirror.example.com/lookaside --lookaside-cache https://cache.bottlerocket.aws',
    '<%= config.bin %> fetch --upstream-fallback --jobs 16',
    '<%= config.bin %> fetch --verify --json',
  ];

  static override strict = false;
  static override args = {
    package: Args.string({ description: 'packages to fetch (all when none are named); more may follow' }),
  };

  static override flags = {
    'lookaside-cache': Flags.string({
      description: 'lookaside cache base URL to try, in the order given (replaces the configured list)',
      multiple: true,
      multipleNonGreedy: true,
    }),
    'upstream-fallback': Flags.boolean({
      description: 'fetch from upstream when no lookaside cache has a file',
      allowNo: true,
    }),
    jobs: Flags.integer({ char: 'j', description: 'downloads in parallel', min: 1, max: 64 }),
    'cache-dir': Flags.string({ description: 'local lookaside cache directory (default: .lookaside in the project)' }),
    verify: Flags.boolean({ description: 're-hash files already in the local cache and fetch mismatching ones again' }),
  };

  async run(): Promise<FetchResult> {
    const { flags, argv } = await this.parse(Fetch);
    const names = argv as string[];
    const projectDir = findProjectDir();
    const config = await loadFetchConfig(projectDir, {
      ...(flags['lookaside-cache'] === undefined ? {} : { lookasideCaches: flags['lookaside-cache'] }),
      ...(flags['upstream-fallback'] === undefined ? {} : { upstreamFallback: flags['upstream-fallback'] }),
      ...(flags.jobs === undefined ? {} : { jobs: flags.jobs }),
      ...(flags['cache-dir'] === undefined ? {} : { cacheDir: flags['cache-dir'] }),
    });
    const packages =
      names.length === 0 ? await loadAllPackages(projectDir) : await Promise.all([...new Set(names)].map((name) => loadPackage(projectDir, name)));
    const files = await fetchExternalFiles(packages, config, {
      progress: this.jsonEnabled() ? 'silent' : 'auto',
      verify: flags.verify,
    });

    const count = (source: FetchedFile['source']): number => files.filter((file) => file.source === source).length;
    this.say(
      `${files.length} external file(s) of ${packages.length} package(s) in ${config.cacheDir}: ` +
        `${count('cache')} already cached, ${count('lookaside')} from lookaside caches, ${count('upstream')} from upstream`,
    );
    return { cacheDir: config.cacheDir, lookasideCaches: config.lookasideCaches, upstreamFallback: config.upstreamFallback, files };
  }
}
