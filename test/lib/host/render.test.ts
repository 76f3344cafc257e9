import test from 'ava';
import { chmod, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseTemplate, renderTemplate } from '../../../src/lib/host/render/template.ts';
import type { ApiServer } from '../../../src/lib/host/apiserver/server.ts';
import { startServer } from './_root.ts';

/** Adds a service `probe` affected by settings.motd whose restart command records its environment. */
async function addProbeService(root: string, server: ApiServer, templatePath = '/usr/share/templates/probe'): Promise<void> {
  await mkdir(join(root, 'usr/bin'), { recursive: true });
  await writeFile(join(root, 'usr/bin/probe'), `#!/bin/sh\nprintf '%s|%s\\n' "$CHANGED_SETTINGS" "$1" >> "${root}/probe.out"\n`);
  await chmod(join(root, 'usr/bin/probe'), 0o755);
  await writeFile(join(root, 'usr/share/templates/probe'), '[required-extensions]\nmotd = "v1"\n+++\nmotd is {{settings.motd}}\n');
  await server.store.writeLiveDirect([
    { segments: ['services', 'probe', 'configuration-files'], value: ['probe-conf'] },
    { segments: ['services', 'probe', 'restart-commands'], value: ['/usr/bin/probe first', '/usr/bin/probe second'] },
    { segments: ['configuration-files', 'probe-conf', 'path'], value: '/etc/probe/probe.conf' },
    { segments: ['configuration-files', 'probe-conf', 'template-path'], value: templatePath },
  ]);
  await server.store.writeMetadataDirect(['settings', 'motd'], 'affected-services', ['motd', 'probe']);
}

test('commit_and_apply renders affected files under the root and runs restart commands with CHANGED_SETTINGS', async (t) => {
  const { root, server, call } = await startServer(t);
  await addProbeService(root, server);
  await call('PATCH', '/settings?tx=t1', { motd: 'hi' });
  const response = await call('POST', '/tx/commit_and_apply?tx=t1');
  t.is(response.status, 200);
  t.deepEqual(JSON.parse(response.body), ['settings.motd']);
  await server.applier.idle();
  t.is(await readFile(join(root, 'etc/motd'), 'utf8'), 'hi\n');
  t.is(await readFile(join(root, 'etc/probe/probe.conf'), 'utf8'), 'motd is hi\n');
  t.is(await readFile(join(root, 'probe.out'), 'utf8'), 'settings.motd|first\nsettings.motd|second\n');
  const [report] = JSON.parse((await call('GET', '/apply-status')).body).slice(-1);
  t.is(report.state, 'succeeded');
  t.deepEqual(report.keys, ['settings.motd']);
});

test('a template path that escapes the root is a 400 before anything is committed', async (t) => {
  const { root, server, call } = await startServer(t);
  await addProbeService(root, server, '/usr/share/templates/../../../../etc/passwd');
  await call('PATCH', '/settings?tx=t1', { motd: 'escape' });
  const before = (await call('GET', '/settings')).body;
  const response = await call('POST', '/tx/commit_and_apply?tx=t1');
  t.is(response.status, 400);
  t.regex(response.body, /configuration file 'probe-conf' template-path '.*' escapes the root/);
  t.is((await call('GET', '/settings')).body, before);
  t.deepEqual(JSON.parse((await call('GET', '/tx?tx=t1')).body), { motd: 'escape' });
  const apply = await call('POST', '/tx/apply?keys=settings.motd');
  t.is(apply.status, 400);
});

test('a template that fails to render is recorded in /apply-status and no file of that apply is written', async (t) => {
  const { root, server, call } = await startServer(t);
  await addProbeService(root, server);
  await writeFile(join(root, 'usr/share/templates/probe'), '[required-extensions]\nmotd = "v1"\n+++\n{{settings.missing}}\n');
  await call('PATCH', '/settings', { motd: 'not written' });
  t.is((await call('POST', '/tx/commit_and_apply')).status, 200);
  await server.applier.idle();
  const [report] = JSON.parse((await call('GET', '/apply-status')).body).slice(-1);
  t.is(report.state, 'failed');
  const probe = report.files.find((file: { name: string }) => file.name === 'probe-conf');
  t.is(probe.status, 'failed');
  t.regex(probe.error, /missing/);
  t.is(report.files.find((file: { name: string }) => file.name === 'motd').status, 'not-written');
  t.not(await readFile(join(root, 'etc/motd'), 'utf8').catch(() => ''), 'not written\n');
  await t.throwsAsync(stat(join(root, 'probe.out')));
});

test('a failing restart command is recorded with its exit code and stops that service', async (t) => {
  const { root, server, call } = await startServer(t);
  await addProbeService(root, server);
  await writeFile(join(root, 'usr/bin/probe'), '#!/bin/sh\necho "probe broke" >&2\nexit 3\n');
  await call('PATCH', '/settings', { motd: 'x' });
  await call('POST', '/tx/commit_and_apply');
  await server.applier.idle();
  const [report] = JSON.parse((await call('GET', '/apply-status')).body).slice(-1);
  t.is(report.state, 'failed');
  const probe = report.services.find((service: { name: string }) => service.name === 'probe');
  t.is(probe.commands.length, 1);
  t.is(probe.commands[0].exitCode, 3);
  t.is(probe.commands[0].stderr, 'probe broke\n');
});

test('restart commands missing from a dev root are skipped, never run from the build host', async (t) => {
  const { server, call } = await startServer(t);
  // /bin/true exists on the build host but not in the root: it must not run.
  await server.store.writeLiveDirect([{ segments: ['services', 'ntp', 'restart-commands'], value: ['/bin/true --from-host'] }]);
  await call('PATCH', '/settings', { ntp: { options: ['prefer'] } });
  await call('POST', '/tx/commit_and_apply');
  await server.applier.idle();
  const [report] = JSON.parse((await call('GET', '/apply-status')).body).slice(-1);
  const ntp = report.services.find((service: { name: string }) => service.name === 'ntp');
  t.is(ntp.commands[0].status, 'skipped');
  t.regex(ntp.commands[0].note, /\/bin\/true is not an executable inside the root/);
  t.is(report.state, 'succeeded');
});

test('rendered files get the mode from configuration-files metadata', async (t) => {
  const { root, server } = await startServer(t);
  server.applier.schedule('all');
  await server.applier.idle();
  const toml = await stat(join(root, 'etc/host-containers/host-containers.toml'));
  t.is(toml.mode & 0o777, 0o600);
  t.is((await stat(join(root, 'etc/motd'))).mode & 0o777, 0o644);
});

test('templates: front matter is checked, HTML is escaped unless triple-stashed, helpers come from extensions', (t) => {
  const template = parseTemplate(
    '[required-extensions]\nkernel = "v1"\nstd = { version = "v1", helpers = ["join_map", "default"] }\n+++\n{{join_map "=" "," "no-fail-if-missing" settings.kernel.sysctl}} {{default "d" settings.kernel.lockdown}} {{settings.kernel.sysctl.a}} {{{settings.kernel.sysctl.a}}}',
    'probe',
  );
  t.is(renderTemplate(template, { kernel: { sysctl: { a: '<1>', b: '2' } } }, {}, 'probe'), 'a&#x3D;&lt;1&gt;,b&#x3D;2 d &lt;1&gt; <1>', 'helper output is escaped too, as handlebars-rust does');
  t.throws(() => parseTemplate('[other]\n+++\n', 'x'), { message: /unknown front matter field 'other'/ });
  t.throws(() => parseTemplate('no separator', 'x'), { message: /no front matter separator/ });
  const duplicate = parseTemplate('[required-extensions]\nstd = "v1"\nnetwork = { version = "v1", helpers = ["host"] }\nkubernetes = { version = "v1", helpers = ["host"] }\n+++\n', 'dup');
  t.throws(() => renderTemplate(duplicate, {}, {}, 'dup'), { message: /has no helper 'host'|requested from both/ });
  const strict = parseTemplate('[required-extensions]\nmotd = "v1"\n+++\n{{settings.motd}}', 's');
  t.throws(() => renderTemplate(strict, {}, {}, 's'), { message: /motd/ });
});
