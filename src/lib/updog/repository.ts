// The signed update repository as updog sees it: tuf-js for metadata (trust kept between runs),
// and brl's own streaming, length- and hash-checked target reads.
import { createHash } from 'node:crypto';
import { copyFile, mkdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Updater, type Fetcher, type TargetFile } from 'tuf-js';
import { DownloadHTTPError, DownloadLengthMismatchError, ExpiredMetadataError } from 'tuf-js/dist/error.js';
import { BrlError, ExitCode, errnoCode } from '../core/errors.ts';
import { BodyLengthError, HttpStatusError, getBytes, streamBody, type TransportOptions } from './http.ts';
import { PartialDownload } from './partial-download.ts';
import { hostPaths } from './paths.ts';

const MIB = 1024 * 1024;

/** tuf-js's Fetcher on brl's transport, so metadata requests carry the query and retry rules too. */
class UpdogFetcher implements Fetcher {
  readonly #transport: TransportOptions;
  constructor(transport: TransportOptions) {
    this.#transport = transport;
  }

  async downloadBytes(url: string, maxLength: number): Promise<Buffer> {
    try {
      return await getBytes(url, this.#transport, maxLength);
    } catch (error) {
      if (error instanceof HttpStatusError) throw new DownloadHTTPError(error.message, error.statusCode);
      if (error instanceof BodyLengthError) throw new DownloadLengthMismatchError(error.message);
      throw error;
    }
  }

  async downloadFile<T>(): Promise<T> {
    throw new Error('updog streams targets itself; tuf-js downloadTarget is not used');
  }
}

export interface RepositoryLocation {
  metadataBaseUrl: string;
  targetsBaseUrl: string;
}

function joinUrl(base: string, name: string): string {
  return `${base.replace(/\/+$/, '')}/${name}`;
}

/** Turns tuf-js and transport failures into messages that say what to do. */
function repositoryError(error: unknown, location: RepositoryLocation): unknown {
  if (error instanceof BrlError) return error;
  const message = error instanceof Error ? error.message : String(error);
  if (error instanceof ExpiredMetadataError || /expired/i.test(message)) {
    return new BrlError(`update repository ${location.metadataBaseUrl} has expired metadata: ${message}`, {
      hint: 'the repository owner must refresh it (`brl repo refresh`); updates stay blocked until then',
      exitCode: ExitCode.verifyFailed,
      code: 'METADATA_EXPIRED',
      cause: error,
    });
  }
  if (error instanceof DownloadHTTPError) {
    return new BrlError(`update repository ${location.metadataBaseUrl}: ${message}`, {
      hint: 'check metadata_base_url in /etc/updog.toml; it must point at <repo>/<variant>/<arch>/',
      exitCode: ExitCode.network,
      code: 'METADATA_UNAVAILABLE',
      cause: error,
    });
  }
  return new BrlError(`update repository ${location.metadataBaseUrl} failed verification: ${message}`, {
    hint: 'the repository is not signed by the keys this host trusts (/usr/share/updog/root.json), or was tampered with',
    exitCode: ExitCode.verifyFailed,
    code: 'METADATA_UNTRUSTED',
    cause: error,
  });
}

export class UpdateRepository {
  readonly location: RepositoryLocation;
  readonly #updater: Updater;
  readonly #transport: TransportOptions;
  readonly #metadataDir: string;

  readonly #consistentSnapshot: boolean;

  private constructor(location: RepositoryLocation, updater: Updater, transport: TransportOptions, metadataDir: string, consistentSnapshot: boolean) {
    this.location = location;
    this.#updater = updater;
    this.#transport = transport;
    this.#metadataDir = metadataDir;
    this.#consistentSnapshot = consistentSnapshot;
  }

  /**
   * Loads and verifies the repository's metadata. tuf-js keeps the verified metadata under the
   * host's updog state directory, so a rollback to older metadata is refused across runs; the first
   * run starts from the root baked into the image.
   */
  static async load(hostRoot: string, location: RepositoryLocation, transport: TransportOptions): Promise<UpdateRepository> {
    const paths = hostPaths(hostRoot);
    await mkdir(paths.tufState, { recursive: true });
    const stateRoot = join(paths.tufState, 'root.json');
    let copiedTrustedRoot = false;
    try {
      await readFile(stateRoot);
    } catch (error) {
      if (errnoCode(error) !== 'ENOENT') throw error;
      try {
        await copyFile(paths.trustedRoot, stateRoot);
        copiedTrustedRoot = true;
      } catch (copyError) {
        if (errnoCode(copyError) !== 'ENOENT') throw copyError;
        throw new BrlError(`no trusted TUF root at ${paths.trustedRoot}`, {
          hint: 'the image must carry the repository\'s root.json there (variant build option or Infra.toml root_role_url)',
          exitCode: ExitCode.notFound,
          code: 'NO_TRUSTED_ROOT',
        });
      }
    }
    let updater: Updater;
    try {
      updater = newUpdater(paths.tufState, location, transport);
    } catch (error) {
      // The constructor parses and self-verifies the root; a bad one must not stay in the state
      // directory, or fixing the image's root.json would not help the next run.
      if (copiedTrustedRoot) await rm(stateRoot, { force: true });
      const source = copiedTrustedRoot ? paths.trustedRoot : stateRoot;
      throw new BrlError(`trusted TUF root ${source} is not valid: ${(error as Error).message}`, {
        hint: 'it must be a root.json signed by a threshold of its own root keys (brl repo root sign)',
        exitCode: ExitCode.verifyFailed,
        code: 'BAD_TRUSTED_ROOT',
        cause: error,
      });
    }
    return UpdateRepository.#refreshed(updater, location, transport, paths.tufState);
  }

  /**
   * The repository from metadata already trusted in `metadataDir` (root.json at least), refreshed:
   * what brl-tuf-client runs for conformance suites, the same path as load() after its first run.
   */
  static async open(metadataDir: string, location: RepositoryLocation, transport: TransportOptions): Promise<UpdateRepository> {
    return UpdateRepository.#refreshed(newUpdater(metadataDir, location, transport), location, transport, metadataDir);
  }

  static async #refreshed(updater: Updater, location: RepositoryLocation, transport: TransportOptions, metadataDir: string): Promise<UpdateRepository> {
    try {
      await updater.refresh();
    } catch (error) {
      throw repositoryError(error, location);
    }
    // tuf-js keeps the newest trusted root as root.json; its consistent_snapshot names the targets.
    const root = JSON.parse(await readFile(join(metadataDir, 'root.json'), 'utf8')) as { signed?: { consistent_snapshot?: unknown } };
    return new UpdateRepository(location, updater, transport, metadataDir, root.signed?.consistent_snapshot === true);
  }

  /** Where tuf-js keeps the verified metadata (root.json, timestamp.json, snapshot.json, targets.json). */
  get metadataDir(): string {
    return this.#metadataDir;
  }

  async targetInfo(name: string): Promise<TargetFile> {
    const info = await this.#updater.getTargetInfo(name);
    if (!info) {
      throw new BrlError(`update repository ${this.location.metadataBaseUrl} has no target ${JSON.stringify(name)}`, {
        hint: 'the repository is incomplete; republish it with `brl repo build`',
        exitCode: ExitCode.notFound,
        code: 'TARGET_NOT_FOUND',
      });
    }
    return info;
  }

  /** A target's URL: `<targets>/<sha256>.<name>` with consistent snapshots (brl's), else `<targets>/<name>`. */
  targetUrl(info: TargetFile): string {
    if (!this.#consistentSnapshot) return joinUrl(this.location.targetsBaseUrl, info.path);
    const sha256 = info.hashes.sha256;
    if (sha256 === undefined) {
      throw new BrlError(`target ${info.path} has no sha256 hash in targets.json`, { exitCode: ExitCode.verifyFailed, code: 'TARGET_WITHOUT_SHA256' });
    }
    const slash = info.path.lastIndexOf('/');
    const name = slash < 0 ? `${sha256}.${info.path}` : `${info.path.slice(0, slash + 1)}${sha256}.${info.path.slice(slash + 1)}`;
    return joinUrl(this.location.targetsBaseUrl, name);
  }

  /**
   * The target's bytes as they arrive, never more than its signed length. The SHA-256 is checked
   * when the last byte is in: a mismatch throws before the generator finishes, so a consumer that
   * only commits on completion never commits unverified data.
   *
   * With `partialDir`, the bytes are also kept there (`partial-download.ts`) until the target
   * verifies. A run that fails on the transport (a stalled or unreachable server) leaves them, and
   * the next run replays them from disk, hashed like new bytes, and asks the server only for the
   * rest. Any other end (a mismatch, a consumer that gave up on damaged data) drops them.
   */
  async *streamTarget(name: string, options: { partialDir?: string } = {}): AsyncGenerator<Buffer> {
    const info = await this.targetInfo(name);
    const hash = createHash('sha256');
    let length = 0;
    const partial = options.partialDir === undefined ? undefined : await PartialDownload.open(options.partialDir, targetSha256(info), info.length);
    let keep = false;
    try {
      if (partial && partial.keptBytes > 0) {
        this.#transport.log('info', `resuming ${name} at byte ${partial.keptBytes} of ${info.length} from a previous run`);
        for await (const chunk of partial.replay()) {
          hash.update(chunk);
          length += chunk.length;
          yield chunk;
        }
      }
      if (length < info.length) {
        for await (const chunk of streamBody(this.targetUrl(info), this.#transport, { expectedLength: info.length, startAt: length })) {
          hash.update(chunk);
          await partial?.append(chunk, hash);
          length += chunk.length;
          yield chunk;
        }
      }
    } catch (error) {
      if (error instanceof BodyLengthError) throw targetMismatch(name, error.message);
      if (error instanceof HttpStatusError) {
        throw new BrlError(`could not download target ${name}: ${error.message}`, { exitCode: ExitCode.network, code: 'TARGET_UNAVAILABLE' });
      }
      keep = error instanceof BrlError && error.exitCode === ExitCode.network;
      throw error;
    } finally {
      // Verified or not, a stream that got to its end has no further use for the kept bytes.
      await partial?.close(keep, hash);
    }
    const digest = hash.digest('hex');
    if (length !== info.length || digest !== info.hashes.sha256) {
      throw targetMismatch(name, `got ${length} bytes with sha256 ${digest}, signed metadata says ${info.length} bytes with sha256 ${info.hashes.sha256}`);
    }
  }

  /** A small target, whole and verified (manifest.json, migrations). */
  async readTarget(name: string): Promise<Buffer> {
    const chunks: Buffer[] = [];
    for await (const chunk of this.streamTarget(name)) chunks.push(chunk);
    return Buffer.concat(chunks);
  }
}

function targetSha256(info: TargetFile): string {
  const sha256 = info.hashes.sha256;
  if (sha256 === undefined || !/^[0-9a-f]{64}$/.test(sha256)) {
    throw new BrlError(`target ${info.path} has no sha256 hash in targets.json`, { exitCode: ExitCode.verifyFailed, code: 'TARGET_WITHOUT_SHA256' });
  }
  return sha256;
}

function targetMismatch(name: string, detail: string): BrlError {
  return new BrlError(`target ${name} does not match the signed repository metadata: ${detail}`, {
    hint: 'the server or a proxy altered the file; nothing was marked bootable. Retry, and report it if it persists',
    exitCode: ExitCode.verifyFailed,
    code: 'TARGET_MISMATCH',
  });
}

function newUpdater(metadataDir: string, location: RepositoryLocation, transport: TransportOptions): Updater {
  return new Updater({
    metadataDir,
    metadataBaseUrl: location.metadataBaseUrl,
    targetBaseUrl: location.targetsBaseUrl,
    fetcher: new UpdogFetcher(transport),
    config: {
      maxRootRotations: 1024,
      rootMaxLength: MIB,
      timestampMaxLength: MIB,
      snapshotMaxLength: MIB,
      targetsMaxLength: 10 * MIB,
    },
  });
}
