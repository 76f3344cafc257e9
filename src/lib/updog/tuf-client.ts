// updog's TUF client behind the tuf-conformance client-under-test protocol (its CLIENT-CLI.md):
// `init`, `refresh` and `download`, exit 0 on success and 1 on any failure, trusted metadata under
// non-versioned names in --metadata-dir. It drives UpdateRepository, the very code updog uses, so
// an independent conformance suite tests what hosts run.
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { copyFile, mkdir, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { parseArgs } from 'node:util';
import { defaultTransportOptions } from './http.ts';
import { UpdateRepository } from './repository.ts';

export const TUF_CLIENT_USAGE = `Usage: brl-tuf-client --metadata-dir DIR init TRUSTED_ROOT
       brl-tuf-client --metadata-dir DIR --metadata-url URL refresh
       brl-tuf-client --metadata-dir DIR --metadata-url URL --target-name PATH
                      --target-base-url URL --target-dir DIR download

  updog's TUF client speaking the tuf-conformance client-under-test protocol.
  Exit 0 when the command succeeded fully, 1 otherwise.
`;

/** Where a target is kept in --target-dir: its path with '/' escaped, so every target is one file. */
export function targetFileName(targetPath: string): string {
  return encodeURIComponent(targetPath);
}

async function sha256OfFile(path: string): Promise<{ sha256: string; length: number } | undefined> {
  const hash = createHash('sha256');
  let length = 0;
  try {
    for await (const chunk of createReadStream(path)) {
      hash.update(chunk as Buffer);
      length += (chunk as Buffer).length;
    }
  } catch {
    return undefined;
  }
  return { sha256: hash.digest('hex'), length };
}

/** Runs one protocol command; returns the exit code and writes what went wrong to `log`. */
export async function runTufClient(argv: string[], log: (line: string) => void): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        'metadata-dir': { type: 'string' },
        'metadata-url': { type: 'string' },
        'target-name': { type: 'string' },
        'target-base-url': { type: 'string' },
        'target-dir': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (error) {
    log(`${(error as Error).message}\n${TUF_CLIENT_USAGE}`);
    return 1;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    log(TUF_CLIENT_USAGE);
    return 0;
  }
  const [command, ...rest] = positionals;
  const metadataDir = values['metadata-dir'];
  const need = (name: keyof typeof values): string => {
    const value = values[name];
    if (typeof value !== 'string' || value === '') throw new Error(`${command} needs --${name}`);
    return value;
  };
  try {
    if (metadataDir === undefined) throw new Error('--metadata-dir is required');
    if (command === 'init') {
      const [trustedRoot] = rest;
      if (trustedRoot === undefined || rest.length !== 1) throw new Error('init takes one TRUSTED_ROOT file');
      // No request and no check yet: the protocol's init only stores the trusted root.
      await mkdir(metadataDir, { recursive: true });
      await copyFile(trustedRoot, join(metadataDir, 'root.json'));
      return 0;
    }
    if (rest.length > 0) throw new Error(`unexpected arguments: ${rest.join(' ')}`);
    const location = { metadataBaseUrl: need('metadata-url'), targetsBaseUrl: values['target-base-url'] ?? '' };
    if (command === 'refresh') {
      await UpdateRepository.open(metadataDir, location, defaultTransportOptions);
      return 0;
    }
    if (command === 'download') {
      const targetName = need('target-name');
      need('target-base-url');
      const targetDir = need('target-dir');
      const repository = await UpdateRepository.open(metadataDir, location, defaultTransportOptions);
      const info = await repository.targetInfo(targetName);
      const path = join(targetDir, targetFileName(targetName));
      // A file already there with the signed length and hash is not downloaded again.
      const existing = await sha256OfFile(path);
      if (existing !== undefined && existing.length === info.length && existing.sha256 === info.hashes.sha256) return 0;
      await mkdir(dirname(path), { recursive: true });
      // Streamed into a temp file and renamed only once its length and hash matched.
      const temp = `${path}.tmp-${process.pid}`;
      try {
        await pipeline(Readable.from(repository.streamTarget(targetName)), createWriteStream(temp));
        await rename(temp, path);
      } finally {
        await rm(temp, { force: true });
      }
      return 0;
    }
    throw new Error(command === undefined ? 'no command (init, refresh or download)' : `unknown command '${command}'`);
  } catch (error) {
    log(`brl-tuf-client: ${error instanceof Error ? error.message : String(error)}`);
    return 1;
  }
}
