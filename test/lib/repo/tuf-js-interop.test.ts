import test from 'ava';
import { readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { serveDirectory } from '../../../src/lib/repo/serve.ts';
import { buildSignedRepo, makeKey, makeRoot, tempDir, tufJsClient } from './helpers.ts';
import type { GeneratedKeyType } from '../../../src/lib/signing/key-file.ts';

for (const keyType of ['ed25519', 'ecdsa', 'rsa'] as GeneratedKeyType[]) {
  test(`tuf-js refreshes and downloads every target from brl repo serve (${keyType} keys)`, async (t) => {
    const dir = tempDir();
    const signer = await makeKey(dir, 'signing', keyType);
    const built = await buildSignedRepo({ dir, signer, rootPath: await makeRoot(dir, signer) });
    const server = await serveDirectory(built.outdir);
    t.teardown(() => server.close());
    const { updater, targetDir } = await tufJsClient(server.url, readFileSync(built.rootPath));
    await updater.refresh();
    const images = [built.images.boot, built.images.root, built.images.hash, ...built.images.linkTargets];
    for (const path of images) {
      const info = await updater.getTargetInfo(basename(path));
      t.truthy(info, `tuf-js knows ${basename(path)}`);
      const downloaded = await updater.downloadTarget(info!, join(targetDir, basename(path)));
      t.deepEqual(readFileSync(downloaded), readFileSync(path));
    }
    const manifestInfo = await updater.getTargetInfo('manifest.json');
    const manifest = JSON.parse(readFileSync(await updater.downloadTarget(manifestInfo!, join(targetDir, 'manifest.json')), 'utf8'));
    t.is(manifest.updates[0].version, '1.0.0');
    t.is(manifest.updates[0].images.boot, basename(built.images.boot));
    t.deepEqual(Object.keys(manifest.updates[0].waves), ['0', '20', '102', '307', '819', '1228', '1843']);
  });
}
