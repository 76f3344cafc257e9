import test from 'ava';
import { execFileSync } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { createServer as createHttpServer, request as httpRequest } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { connect, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { getCACertificates, setDefaultCACertificates } from 'node:tls';
import { checkUpdate } from '../../../src/lib/updog/index.ts';
import { buildRelease, makeHost, startRepository } from './fixtures.ts';
import { scratchDir } from '../signpost/fixtures.ts';

test('https_proxy from updog.toml tunnels every HTTPS request through the proxy with CONNECT', async (t) => {
  const dir = await scratchDir('brl-proxy-');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
    '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { stdio: 'pipe' });
  const cert = await readFile(join(dir, 'cert.pem'), 'utf8');
  setDefaultCACertificates([...getCACertificates('default'), cert]);

  const repo = await startRepository([await buildRelease('1.1.0')]);
  t.teardown(() => repo.server.close());
  // TLS in front of the test repository.
  const origin = new URL(repo.metadataBaseUrl);
  const tlsServer = createHttpsServer({ key: await readFile(join(dir, 'key.pem')), cert }, (request, response) => {
    const upstream = httpRequest({ host: origin.hostname, port: origin.port, path: request.url, headers: request.headers }, (answer) => {
      response.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(response);
    });
    request.pipe(upstream);
  });
  await new Promise<void>((resolve) => tlsServer.listen(0, '127.0.0.1', resolve));
  t.teardown(() => tlsServer.close());
  const httpsOrigin = `https://127.0.0.1:${(tlsServer.address() as AddressInfo).port}`;
  // A CONNECT proxy that records where it tunnels to.
  const tunnels: string[] = [];
  const proxy = createHttpServer();
  proxy.on('connect', (request, client, head) => {
    tunnels.push(request.url ?? '');
    const [host, port] = (request.url ?? '').split(':');
    const upstream = connect(Number(port), host, () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  t.teardown(() => proxy.close());

  const host = await makeHost(repo, '1.0.0', {
    metadata_base_url: `${httpsOrigin}${origin.pathname}`,
    targets_base_url: `${httpsOrigin}/targets/`,
  });
  await writeFile(join(host.root, 'etc', 'updog.toml'), `${await readFile(join(host.root, 'etc', 'updog.toml'), 'utf8')}https_proxy = "http://127.0.0.1:${(proxy.address() as AddressInfo).port}"\nno_proxy = ["example.internal"]\n`);
  const { chosen } = await checkUpdate({ root: host.root, disk: host.disk, ignoreWaves: true });
  t.is(chosen?.version, '1.1.0');
  t.true(tunnels.length >= 4, `${tunnels.length} tunnels`);
  t.true(tunnels.every((target) => target === new URL(httpsOrigin).host));
});
