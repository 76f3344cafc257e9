import test from 'ava';
import { generateKeyPairSync } from 'node:crypto';
import { createServer } from 'node:http';
import { openSigner, parseKeySource } from '../../../src/lib/signing/key-source.ts';
import { keyJsonFromPublicKey, verifyWithKey } from '../../../src/lib/tuf/key.ts';

test('an SSM SecureString holding a PEM key signs, fetched with decryption through the real SDK', async (t) => {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const requests: { target: string; body: Record<string, unknown> }[] = [];
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
      requests.push({ target: String(request.headers['x-amz-target']), body });
      response.writeHead(200, { 'content-type': 'application/x-amz-json-1.1' });
      response.end(JSON.stringify({ Parameter: { Name: body.Name, Type: 'SecureString', Value: privateKey.export({ type: 'pkcs8', format: 'pem' }), Version: 1 } }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => server.close());
  const address = server.address();
  process.env.AWS_ENDPOINT_URL_SSM = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  process.env.AWS_REGION = 'us-west-2';
  process.env.AWS_ACCESS_KEY_ID = 'AKIAFAKE';
  process.env.AWS_SECRET_ACCESS_KEY = 'fake';

  const signer = await openSigner(parseKeySource('aws-ssm:///brl/signing-key'));
  t.deepEqual(requests, [{ target: 'AmazonSSM.GetParameter', body: { Name: '/brl/signing-key', WithDecryption: true } }]);
  t.deepEqual(signer.publicKey, keyJsonFromPublicKey(publicKey));
  t.is(signer.source, 'aws-ssm:///brl/signing-key');
  t.notRegex(JSON.stringify(signer), /PRIVATE/);
  const signature = Buffer.from(await signer.sign(Buffer.from('x'))).toString('hex');
  t.true(verifyWithKey(signer.publicKey, Buffer.from('x'), signature));
});
