// settings.container-registry without a VM: the settings model checks it, the shipped templates
// render it, host-ctr reads what host-ctr-toml renders, and containerd's own parser reads the
// workload config containerd-config-toml renders (`containerd config dump` is the oracle).
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { registryEndpoints } from '../../../src/lib/containerd/registry-hosts.ts';
import { BrlError } from '../../../src/lib/core/errors.ts';
import { parseRegistryConfig, readRegistryConfig } from '../../../src/lib/host/host-ctr/registry-config.ts';
import { parseTemplate, renderTemplate } from '../../../src/lib/host/render/template.ts';
import { SettingsModel } from '../../../src/lib/host/settings/model.ts';
import { repoDir } from '../../helpers/cli.ts';

const registrySettings = {
  mirrors: [
    { registry: 'brl.invalid', endpoint: ['http://10.0.2.100:5000', 'mirror.example.com/v2/'] },
    { registry: '*', endpoint: ['https://all.example.com:8443/prefix'] },
  ],
  credentials: [
    { registry: '10.0.2.100:5000', username: 'brl "ops"', password: 'p\\w' },
    { registry: 'docker.io', auth: Buffer.from('hub:token').toString('base64') },
  ],
};

async function render(name: string, settings: Record<string, unknown>): Promise<string> {
  const path = join(repoDir, 'src/lib/host/defaults/templates', name);
  return renderTemplate(parseTemplate(await readFile(path, 'utf8'), name), settings, {}, name);
}

test('the settings model takes upstream\'s lists of mirrors and credentials and names the item that is wrong', (t) => {
  const model = new SettingsModel(['container-registry']);
  t.notThrows(() => model.checkCommitted({ 'container-registry': registrySettings }));
  const reason = (value: unknown): string | undefined => t.throws(() => model.checkPatch({ 'container-registry': value }))?.message;
  t.is(reason({ mirrors: [{ registry: 'brl.invalid' }] }), "Invalid setting 'settings.container-registry.mirrors[0]': missing 'endpoint'");
  t.is(reason({ mirrors: [{ registry: 'a b', endpoint: [] }] }), "Invalid setting 'settings.container-registry.mirrors[0].registry': 'a b' does not match a registry host[:port] or '*'");
  t.regex(reason({ mirrors: [{ registry: 'x.io', endpoint: ['ftp://x.io'] }] }) ?? '', /^Invalid setting 'settings\.container-registry\.mirrors\[0\]\.endpoint\[0\]': 'ftp:\/\/x\.io' does not match an http:\/\/ or https:\/\/ URL/);
  t.is(reason({ mirrors: { 'docker.io': ['https://m'] } }), "Invalid setting 'settings.container-registry.mirrors': expected a list, got a table");
  t.is(reason({ credentials: [{ username: 'u', password: 'p' }] }), "Invalid setting 'settings.container-registry.credentials[0]': missing 'registry'");
  t.is(reason({ credentials: [{ registry: 'x.io', auth: 'not base64!' }] }), "Invalid setting 'settings.container-registry.credentials[0].auth': is not valid standard base64");
  t.is(reason({ credentials: [{ registry: 'x.io', token: 't' }] }), "Invalid setting 'settings.container-registry.credentials[0].token': unknown setting (expected one of: registry, username, password, auth, identitytoken)");
});

test('host-ctr reads the host-ctr.toml the template renders: the registry\'s mirrors (else *\'s) in order, then the registry; credentials by host, docker.io and registry-1.docker.io as one', async (t) => {
  const hosts = parseRegistryConfig(await render('host-ctr-toml', { 'container-registry': registrySettings }), 'host-ctr.toml');
  t.deepEqual(registryEndpoints('brl.invalid', hosts), [
    { baseUrl: 'http://10.0.2.100:5000', host: '10.0.2.100:5000', mirror: true, credential: { username: 'brl "ops"', password: 'p\\w' } },
    { baseUrl: 'https://mirror.example.com', host: 'mirror.example.com', mirror: true },
    { baseUrl: 'https://brl.invalid', host: 'brl.invalid', mirror: false },
  ]);
  t.deepEqual(registryEndpoints('docker.io', hosts), [
    { baseUrl: 'https://all.example.com:8443/prefix', host: 'all.example.com:8443', mirror: true },
    { baseUrl: 'https://registry-1.docker.io', host: 'docker.io', mirror: false, credential: { auth: Buffer.from('hub:token').toString('base64') } },
  ]);
  t.deepEqual(registryEndpoints('127.0.0.1:5000', parseRegistryConfig(await render('host-ctr-toml', {}), 'empty')), [
    { baseUrl: 'http://127.0.0.1:5000', host: '127.0.0.1:5000', mirror: false },
  ], 'no settings: the registry itself, loopback over HTTP');
});

test('a malformed host-ctr.toml is an error naming the file and key; a missing one means no mirrors and no credentials', async (t) => {
  const error = t.throws(() => parseRegistryConfig('[mirrors."x.io"]\nendpoints = "https://m"\n', '/etc/host-containers/host-ctr.toml'), { instanceOf: BrlError });
  t.is(error?.message, '/etc/host-containers/host-ctr.toml: mirrors."x.io".endpoints must be a list of URLs');
  t.regex(t.throws(() => parseRegistryConfig('[creds."x.io"]\nusername = 1\n', 'f'))?.message ?? '', /^f: creds\."x\.io"\.username must be a string$/);
  const missing = await readRegistryConfig(join(tmpdir(), 'brl-no-such-dir', 'host-ctr.toml'));
  t.is(missing.mirrors.size + missing.credentials.size, 0);
});

test('containerd\'s parser reads the workload config the template renders, with the mirrors and credentials under the CRI plugin', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'brl-containerd-config-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const rendered = await render('containerd-config-toml', { 'container-registry': registrySettings });
  const config = join(dir, 'config.toml');
  await writeFile(config, rendered);
  const dump = (): string => execFileSync('containerd', ['--config', config, 'config', 'dump'], { encoding: 'utf8' });
  t.regex(dump(), /^disabled_plugins = \["io\.containerd\.grpc\.v1\.cri"/m, 'the shipped config, as it is, parses');
  // Dumped with the CRI plugin enabled, containerd shows what it would take from its section.
  await writeFile(config, rendered.replace('  "io.containerd.grpc.v1.cri",\n', ''));
  const withCri = dump();
  t.regex(withCri, /\[plugins\."io\.containerd\.grpc\.v1\.cri"\.registry\.mirrors\."brl\.invalid"\]\n\s+endpoint = \["http:\/\/10\.0\.2\.100:5000", "mirror\.example\.com\/v2\/"\]/);
  t.regex(withCri, /\[plugins\."io\.containerd\.grpc\.v1\.cri"\.registry\.mirrors\."\*"\]\n\s+endpoint = \["https:\/\/all\.example\.com:8443\/prefix"\]/);
  t.regex(withCri, /\[plugins\."io\.containerd\.grpc\.v1\.cri"\.registry\.configs\."10\.0\.2\.100:5000"\.auth\]\n\s+auth = ""\n\s+identitytoken = ""\n\s+password = "p\\\\w"\n\s+username = "brl \\"ops\\""/);
});
