import test from 'ava';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateKeyFile } from '../../../src/lib/signing/key-file.ts';
import { startKmsFake } from './kms-fake.ts';
import { fakeCredentials } from '../../fakes/aws/sigv4.ts';

const keySource = fileURLToPath(new URL('../../../src/lib/signing/key-source.ts', import.meta.url));

/** Opens `source` and signs once in a fresh Node process; returns the AWS SDK client packages it loaded. */
async function sdkClientsLoadedBy(source: string, env: Record<string, string> = {}): Promise<string[]> {
  const probe = `
    const { registerHooks } = require('node:module');
    const loaded = [];
    registerHooks({ resolve(specifier, context, next) { const result = next(specifier, context); loaded.push(result.url); return result; } });
    (async () => {
      const { openSigner, parseKeySource } = await import(${JSON.stringify(keySource)});
      const signer = await openSigner(parseKeySource(${JSON.stringify(source)}));
      await signer.sign(Buffer.from('x'));
      process.stderr.write('LOADED ' + JSON.stringify(loaded));
    })();
  `;
  const stderr = await new Promise<string>((resolve, reject) =>
    execFile(process.execPath, ['-e', probe], { env: { ...process.env, ...env } }, (error, _out, err) => (error ? reject(new Error(err || String(error))) : resolve(err))),
  );
  const loaded = JSON.parse(stderr.slice(stderr.indexOf('LOADED ') + 7)) as string[];
  if (!loaded.some((url) => url.endsWith('/src/lib/signing/key-source.ts'))) throw new Error('the probe recorded no modules');
  return [...new Set(loaded.map((url) => /\/node_modules\/(@aws-sdk\/[^/]+|@smithy\/[^/]+)\//.exec(url)?.[1]).filter((name) => name !== undefined))].sort();
}

test('signing with a file key loads no AWS SDK package', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'brl-sdk-loading-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await generateKeyFile(join(dir, 'key.pem'), 'ed25519');
  t.deepEqual(await sdkClientsLoadedBy(join(dir, 'key.pem')), []);
});

test('signing with a KMS key loads the KMS client only, not the other AWS SDK clients of the factory', async (t) => {
  const fake = await startKmsFake();
  t.teardown(() => fake.close());
  const packages = await sdkClientsLoadedBy(`aws-kms:///${fake.keyId}`, {
    AWS_ENDPOINT_URL_KMS: fake.url,
    AWS_REGION: 'us-west-2',
    AWS_ACCESS_KEY_ID: fakeCredentials.accessKeyId,
    AWS_SECRET_ACCESS_KEY: fakeCredentials.secretAccessKey,
  });
  t.deepEqual(fake.calls, ['TrentService.GetPublicKey', 'TrentService.Sign']);
  t.deepEqual(packages.filter((name) => name.startsWith('@aws-sdk/client-')), ['@aws-sdk/client-kms']);
});
