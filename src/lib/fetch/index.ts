// The fetch library's public surface: configuration, cache layout and fetching packages' external files.
export {
  defaultCacheDirName,
  defaultJobs,
  defaultLookasideCaches,
  loadFetchConfig,
  type FetchConfig,
  type FetchConfigOverrides,
} from './config.ts';
export { defaultNetworkOptions, type NetworkOptions } from './download.ts';
export { fetchExternalFiles, type FetchedFile, type FetchOptions, type FetchSource } from './fetch.ts';
export { lookasidePath, lookasideUrl, type PinnedFile } from './lookaside.ts';
