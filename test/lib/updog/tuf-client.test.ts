// brl-tuf-client (updog's TUF client under the tuf-conformance CLIENT-CLI protocol), run as a
// conformance suite runs it: a separate process per command, exit codes and files as the oracle.
import test from 'ava';
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { serveDirectory } from '../../../src/lib/repo/serve.ts';
import { serializeEnvelope } from '../../../src/lib/tuf/metadata.ts';
import { parseTimestamp } from '../../../src/lib/tuf/snapshot.ts';
import { repoDir } from '../../helpers/cli.ts';
import { buildSignedRepo, tempDir } from '../repo/helpers.ts';

function client(args: string[]): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve) => {
    execFile(join(repoDir, 'bin', 'brl-tuf-client'), args, (error, _stdout, stderr) => resolve({ code: error ? (typeof error.code === 'number' ? error.code : -1) : 0, stderr }));
  });
}

test('init, refresh and download as the conformance suite calls them; a cached target is not fetched again; tampering exits 1', async (t) => {
  const built = await buildSignedRepo();
  const server = await serveDirectory(built.outdir);
  t.teardown(() => server.close());
  const metadataDir = join(tempDir('brl-tuf-client-'), 'metadata');
  const targetDir = tempDir('brl-tuf-client-targets-');
  const metadataUrl = `${server.url}dev/x86_64`;
  const targetBaseUrl = `${server.url}targets`;

  t.deepEqual(await client(['--metadata-dir', metadataDir, 'init', built.rootPath]), { code: 0, stderr: '' });
  t.deepEqual(readFileSync(join(metadataDir, 'root.json')), readFileSync(built.rootPath));
  const refresh = await client(['--metadata-dir', metadataDir, '--metadata-url', metadataUrl, 'refresh']);
  t.is(refresh.code, 0, refresh.stderr);
  t.deepEqual(readdirSync(metadataDir).sort(), ['root.json', 'snapshot.json', 'targets.json', 'timestamp.json'], 'non-versioned names');

  const name = 'manifest.json';
  const download = ['--metadata-dir', metadataDir, '--metadata-url', metadataUrl, '--target-name', name, '--target-base-url', targetBaseUrl, '--target-dir', targetDir, 'download'];
  const first = await client(download);
  t.is(first.code, 0, first.stderr);
  const [stored] = readdirSync(join(built.outdir, 'targets')).filter((file) => file.endsWith(`.${name}`));
  t.deepEqual(readFileSync(join(targetDir, name)), readFileSync(join(built.outdir, 'targets', stored as string)));
  // Already downloaded with the signed hash: no request for it (the server no longer has it).
  const signedBytes = readFileSync(join(built.outdir, 'targets', stored as string));
  renameSync(join(built.outdir, 'targets', stored as string), join(built.outdir, 'gone'));
  t.is((await client(download)).code, 0);
  // A changed local copy is fetched again, and the server's bytes must match the signed hash.
  writeFileSync(join(targetDir, name), 'changed');
  writeFileSync(join(built.outdir, 'targets', stored as string), Buffer.alloc(signedBytes.length, 'x'));
  const tampered = await client(download);
  t.is(tampered.code, 1);
  t.regex(tampered.stderr, /does not match the signed repository metadata/);
  t.is(readFileSync(join(targetDir, name), 'utf8'), 'changed', 'nothing unverified replaces the local file');

  // A timestamp whose signature no longer verifies: refresh fails with 1.
  const timestampPath = join(built.outdir, 'dev', 'x86_64', 'timestamp.json');
  const timestamp = parseTimestamp(readFileSync(timestampPath), 'timestamp.json');
  writeFileSync(timestampPath, serializeEnvelope({ ...timestamp, signed: { ...timestamp.signed, version: timestamp.signed.version + 1 } }));
  t.is((await client(['--metadata-dir', metadataDir, '--metadata-url', metadataUrl, 'refresh'])).code, 1);
});

test('usage errors exit 1 and say what is missing', async (t) => {
  const result = await client(['--metadata-dir', tempDir('brl-tuf-client-'), 'refresh']);
  t.is(result.code, 1);
  t.regex(result.stderr, /refresh needs --metadata-url/);
  t.is((await client(['--metadata-dir', tempDir('brl-tuf-client-'), 'frobnicate'])).code, 1);
});
