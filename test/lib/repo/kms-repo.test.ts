import test from 'ava';
import { readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { KmsSigner } from '../../../src/lib/signing/kms-signer.ts';
import { serveDirectory } from '../../../src/lib/repo/serve.ts';
import { startKmsFake, useKmsFake } from '../signing/kms-fake.ts';
import { buildSignedRepo, makeRoot, tempDir, tufJsClient } from './helpers.ts';

test('a repository signed through KMS (short signatures padded) verifies in tuf-js', async (t) => {
  const fake = await startKmsFake({ stripLeadingZeros: true });
  t.teardown(() => fake.close());
  useKmsFake(fake);
  const dir = tempDir();
  const signer = await KmsSigner.create(fake.keyId);
  const built = await buildSignedRepo({ dir, signer, rootPath: await makeRoot(dir, signer) });
  t.true(fake.signatures.every((signature) => signature.length < 256), 'KMS returned only short signatures');
  const timestamp = JSON.parse(readFileSync(join(built.result.metadataDir, 'timestamp.json'), 'utf8'));
  t.is(timestamp.signatures[0].sig.length, 512, 'stored signatures are the full 256 bytes');
  const server = await serveDirectory(built.outdir);
  t.teardown(() => server.close());
  const { updater, targetDir } = await tufJsClient(server.url, readFileSync(built.rootPath));
  await updater.refresh();
  const info = await updater.getTargetInfo(basename(built.images.root));
  t.deepEqual(readFileSync(await updater.downloadTarget(info!, join(targetDir, 'root'))), readFileSync(built.images.root));
});
