// The host-containers restart command on a dev root, from the file the real template renders.
// systemctl cannot run on this machine (no systemd as PID 1): its calls are recorded instead.
import test from 'ava';
import { mkdtemp, readFile, rm, stat, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { applyHostContainers, selectContainers } from '../../../src/lib/host/host-ctr/apply.ts';
import { parseTemplate, renderTemplate } from '../../../src/lib/host/render/template.ts';
import { repoDir } from '../../helpers/cli.ts';

async function rootWith(hostContainers: Record<string, unknown>): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), 'brl-host-containers-'));
  const templatePath = join(repoDir, 'src/lib/host/defaults/templates/host-containers-toml');
  const template = parseTemplate(await readFile(templatePath, 'utf8'), templatePath);
  await mkdir(join(root, 'etc/host-containers'), { recursive: true });
  await writeFile(join(root, 'etc/host-containers/host-containers.toml'), renderTemplate(template, { 'host-containers': hostContainers } as never, {}, templatePath));
  return root;
}

test('writes user data and environment files from the rendered settings, then enables or disables each unit', async (t) => {
  const root = await rootWith({
    admin: { source: '10.0.2.100:5000/brl/admin@sha256:' + 'a'.repeat(64), enabled: true, superpowered: true, 'user-data': Buffer.from('{"ssh":{}}').toString('base64') },
    control: { source: '10.0.2.100:5000/brl/control:0.1.0', enabled: false, superpowered: false },
  });
  t.teardown(() => rm(root, { recursive: true, force: true }));
  const calls: string[] = [];
  const applied = await applyHostContainers({
    root,
    changedSettings: '',
    systemctl: async (args) => {
      calls.push(args.join(' '));
      if (args[0] === 'is-active') throw new Error('inactive');
    },
    cleanUp: async (name) => {
      calls.push(`clean-up ${name}`);
    },
  });
  t.deepEqual(applied, [{ name: 'admin', action: 'enabled' }, { name: 'control', action: 'disabled' }]);
  t.deepEqual(calls, [
    'is-active --quiet host-containerd.service',
    'enable --now --no-block host-containers@admin.service',
    'disable --now --no-block host-containers@control.service',
  ]);
  t.is(await readFile(join(root, 'local/host-containers/admin/user-data'), 'utf8'), '{"ssh":{}}');
  t.is((await stat(join(root, 'local/host-containers/admin'))).mode & 0o777, 0o700);
  t.is(await readFile(join(root, 'etc/host-containers/admin.env'), 'utf8'), `CTR_SUPERPOWERED=true\nCTR_SOURCE=10.0.2.100:5000/brl/admin@sha256:${'a'.repeat(64)}\n`);
});

test('a change to one container restarts only that one, on a fresh container when host-containerd runs', async (t) => {
  const root = await rootWith({
    admin: { source: 'registry.local:5000/admin:1', enabled: true, superpowered: true },
    control: { source: 'registry.local:5000/control:1', enabled: true, superpowered: false },
  });
  t.teardown(() => rm(root, { recursive: true, force: true }));
  const calls: string[] = [];
  await applyHostContainers({
    root,
    changedSettings: 'settings.host-containers.control.source',
    systemctl: async (args) => {
      calls.push(args.join(' '));
    },
    cleanUp: async (name) => {
      calls.push(`clean-up ${name}`);
    },
  });
  t.deepEqual(calls, [
    'is-active --quiet host-containerd.service',
    'stop host-containers@control.service',
    'clean-up control',
    'enable --now --no-block host-containers@control.service',
  ]);
  t.deepEqual(selectContainers(['admin', 'control'], 'settings.motd'), ['admin', 'control'], 'another setting: all of them');
});

test('a container without a source fails the command, naming it, after applying the others', async (t) => {
  const root = await rootWith({
    broken: { enabled: true, superpowered: false },
    control: { source: 'registry.local:5000/control:1', enabled: true, superpowered: false },
  });
  t.teardown(() => rm(root, { recursive: true, force: true }));
  const calls: string[] = [];
  const error = await t.throwsAsync(applyHostContainers({ root, changedSettings: '', systemctl: async (args) => void calls.push(args.join(' ')), cleanUp: async () => {} }));
  t.regex(error?.message ?? '', /broken: host-containers\.broken\.source is not set/);
  t.true(calls.includes('enable --now --no-block host-containers@control.service'));
});
