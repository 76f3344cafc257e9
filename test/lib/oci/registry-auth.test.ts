// The pull side's answer to a Bearer challenge when the token realm misbehaves: a named BrlError, not a parse error.
import test from 'ava';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { BrlError } from '../../../src/lib/core/errors.ts';
import { RegistryClient } from '../../../src/lib/oci/registry.ts';

test('a token realm that answers 200 without a JSON token is named, not a stack trace', async (t) => {
  const server = createServer((incoming, outgoing) => {
    if (incoming.url?.startsWith('/token')) {
      outgoing.writeHead(200, { 'content-type': 'text/html' });
      outgoing.end('<html>sign in</html>');
      return;
    }
    const { port } = server.address() as AddressInfo;
    outgoing.writeHead(401, { 'www-authenticate': `Bearer realm="http://127.0.0.1:${port}/token",service="test"` });
    outgoing.end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const { port } = server.address() as AddressInfo;
  const client = new RegistryClient({ baseUrl: `http://127.0.0.1:${port}`, registry: `127.0.0.1:${port}`, repository: 'brl/control' });
  t.teardown(() => client.close());
  const error = await t.throwsAsync(client.resolveManifest('latest', ['application/vnd.oci.image.manifest.v1+json']), { instanceOf: BrlError });
  t.is(error?.code, 'REGISTRY_AUTH_REQUIRED');
  t.regex(error?.message ?? '', new RegExp(`registry 127\\.0\\.0\\.1:${port} http://127\\.0\\.0\\.1:${port} answered without a token`));
});
