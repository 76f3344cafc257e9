// A real OCI registry for tests: Debian's docker-registry (distribution 2.8) on 127.0.0.1, storing
// into a temp directory, started by the test and stopped after it; optionally behind its own
// authentication (htpasswd, answered with Basic; or token, answered with a Bearer token from a realm).
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, sign, X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer as createHttpServer, type IncomingMessage } from 'node:http';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';

export interface TestRegistry {
  /** `127.0.0.1:<port>`. */
  address: string;
  /** Where it stores blobs and manifests: another registry started on it serves the same images. */
  dataDir: string;
  stop(): Promise<void>;
}

/** A port nothing listens on right now. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

export interface RegistryAuth {
  /** An htpasswd file's text (bcrypt hashes): the registry challenges with Basic. */
  htpasswd?: string;
  /** A token realm: the registry challenges with Bearer and accepts JWTs signed by a key of `rootCertBundle` (PEM). */
  token?: { realm: string; service: string; issuer: string; rootCertBundle: string };
  /** Serve another registry's storage (its `dataDir`) instead of an empty one. */
  dataDir?: string;
}

export async function startRegistry(auth: RegistryAuth = {}): Promise<TestRegistry> {
  const dir = await mkdtemp(join(tmpdir(), 'brl-registry-'));
  const port = await freePort();
  const address = `127.0.0.1:${port}`;
  const config = join(dir, 'config.yml');
  const dataDir = auth.dataDir ?? join(dir, 'data');
  await writeFile(config, [
    'version: 0.1',
    'log:',
    '  level: warn',
    '  accesslog:',
    '    disabled: true',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${dataDir}`,
    'http:',
    `  addr: ${address}`,
    ...(auth.htpasswd === undefined ? [] : ['auth:', '  htpasswd:', '    realm: brl-test', `    path: ${join(dir, 'htpasswd')}`]),
    ...(auth.token === undefined ? [] : [
      'auth:', '  token:', `    realm: ${auth.token.realm}`, `    service: ${auth.token.service}`, `    issuer: ${auth.token.issuer}`, `    rootcertbundle: ${join(dir, 'token-ca.pem')}`,
    ]),
    '',
  ].join('\n'));
  if (auth.htpasswd !== undefined) await writeFile(join(dir, 'htpasswd'), auth.htpasswd);
  if (auth.token !== undefined) await writeFile(join(dir, 'token-ca.pem'), auth.token.rootCertBundle);
  const child: ChildProcess = spawn('docker-registry', ['serve', config], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (text: string) => {
    stderr += text;
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
    await rm(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      const response = await request(`http://${address}/v2/`);
      await response.body.dump();
      // With authentication on, an anonymous GET /v2/ is challenged: that is an answer too.
      if (response.statusCode === 200 || (response.statusCode === 401 && (auth.htpasswd !== undefined || auth.token !== undefined))) return { address, dataDir, stop };
    } catch {
      // not listening yet
    }
    if (child.exitCode !== null || Date.now() > deadline) {
      await stop();
      throw new Error(`docker-registry did not come up on ${address}: ${stderr.slice(-500)}`);
    }
    await sleep(100);
  }
}

export interface TokenRealm {
  /** What `startRegistry({token})` takes. */
  token: { realm: string; service: string; issuer: string; rootCertBundle: string };
  /** How each token request authenticated: `basic`, `refresh-token` or `none` (refused). */
  requests: string[];
  close(): Promise<void>;
}

/**
 * The token server of distribution's token authentication, on 127.0.0.1: for the user name and
 * password (Basic, on a GET) or the refresh token (an OAuth2 form POST) it issues a JWT (ES256,
 * with its certificate in `x5c`) granting the scope asked for; anything else is a 401. The
 * certificate is made with openssl; the registry checks every token against it.
 */
export async function startTokenRealm(accepted: { username: string; password: string; refreshToken: string }): Promise<TokenRealm> {
  const dir = await mkdtemp(join(tmpdir(), 'brl-token-realm-'));
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-subj', '/CN=brl-test-token-issuer', '-days', '1',
    '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { stdio: 'ignore' });
  const key = await readFile(join(dir, 'key.pem'), 'utf8');
  const certificate = await readFile(join(dir, 'cert.pem'), 'utf8');
  const service = 'brl-test-registry';
  const issuer = 'brl-test-token-issuer';
  const requests: string[] = [];
  const base64url = (data: Buffer | string): string => Buffer.from(data).toString('base64url');
  const issue = (subject: string, scope: string): string => {
    const [type, name, actions] = scope.split(':');
    const now = Math.floor(Date.now() / 1000);
    const header = base64url(JSON.stringify({ typ: 'JWT', alg: 'ES256', x5c: [new X509Certificate(certificate).raw.toString('base64')] }));
    const claims = base64url(JSON.stringify({
      iss: issuer, sub: subject, aud: service, exp: now + 300, nbf: now - 10, iat: now, jti: randomBytes(8).toString('hex'),
      access: type === undefined || name === undefined ? [] : [{ type, name, actions: (actions ?? '').split(',') }],
    }));
    return `${header}.${claims}.${base64url(sign('sha256', Buffer.from(`${header}.${claims}`), { key, dsaEncoding: 'ieee-p1363' }))}`;
  };
  const body = async (incoming: IncomingMessage): Promise<string> => {
    let text = '';
    for await (const chunk of incoming) text += String(chunk);
    return text;
  };
  const server = createHttpServer((incoming, outgoing) => {
    void (async () => {
      const url = new URL(incoming.url ?? '/', 'http://realm');
      let how = 'none';
      let scope = url.searchParams.get('scope') ?? '';
      if (incoming.method === 'POST') {
        const form = new URLSearchParams(await body(incoming));
        scope = form.get('scope') ?? '';
        if (form.get('grant_type') === 'refresh_token' && form.get('refresh_token') === accepted.refreshToken && form.get('service') === service) how = 'refresh-token';
      } else if (incoming.headers.authorization === `Basic ${Buffer.from(`${accepted.username}:${accepted.password}`).toString('base64')}`) {
        how = 'basic';
      }
      requests.push(how);
      if (how === 'none') {
        outgoing.writeHead(401, { 'content-type': 'application/json' }).end('{"details":"bad credentials"}');
        return;
      }
      const token = issue(accepted.username, scope);
      outgoing.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(how === 'basic' ? { token, expires_in: 300 } : { access_token: token, expires_in: 300 }));
    })();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    token: { realm: `http://127.0.0.1:${(server.address() as AddressInfo).port}/token`, service, issuer, rootCertBundle: certificate },
    requests,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await rm(dir, { recursive: true, force: true });
    },
  };
}
