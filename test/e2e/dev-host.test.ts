import test from 'ava';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parse } from 'smol-toml';
import { devBuilder } from '../helpers/dev-image.ts';
import { brl, repoDir } from '../helpers/cli.ts';

const execFileAsync = promisify(execFile);

// The sample variant from the project's package cache under its own build id (see dev-image.ts).
const buildDev = devBuilder('e2e-dev-host');
const scratch = mkdtempSync(join(tmpdir(), 'brl-dev-host-'));
test.after.always(() => rmSync(scratch, { recursive: true, force: true }));

test('the dev image carries the host programs, /etc/updog.toml, the trusted root and the settings defaults in ROOT-A', async (t) => {
  const rootJson = join(scratch, 'root.json');
  const rootJsonText = '{"signed":{"_type":"root","version":1},"signatures":[]}\n';
  writeFileSync(rootJson, rootJsonText);
  const result = await buildDev({ PUBLISH_REPO_ROOT_JSON: rootJson });
  const packages = result.packages.map((pkg) => pkg.name);
  for (const name of ['bottlerocket-brl-host', 'bottlerocket-node-runtime', 'bottlerocket-settings-defaults', 'bottlerocket-settings-defaults-dev']) {
    t.true(packages.includes(name), name);
  }

  const diskLz4 = result.artifacts.find((artifact) => artifact.file.endsWith('.img.lz4') && !artifact.file.includes('-data'));
  t.truthy(diskLz4);
  const disk = join(scratch, 'disk.img');
  await execFileAsync('lz4', ['-dqf', join(result.outputDir, diskLz4?.file ?? ''), disk]);
  // brl image inspect finds ROOT-A; debugfs (e2fsprogs) reads the filesystem at that offset.
  const inspected = await brl(['image', 'inspect', disk, '--json']);
  t.is(inspected.exitCode, 0, inspected.stderr);
  const layout = JSON.parse(inspected.stdout) as { partitions: Array<{ role: string; offsetBytes: number }>; osRelease: Record<string, string> };
  const rootA = layout.partitions.find((partition) => partition.role === 'ROOT-A');
  t.truthy(rootA);
  const debugfs = async (request: string): Promise<string> =>
    (await execFileAsync('debugfs', ['-R', request, `${disk}?offset=${rootA?.offsetBytes}`])).stdout;

  t.regex(await debugfs('stat /usr/bin/updog'), /Type: regular\s+Mode:\s+0755/);
  t.is(await debugfs('cat /usr/bin/updog'), '#!/usr/bin/node --max-semi-space-size=1\nimport "../lib/brl/updog.js";\n');
  for (const bundle of ['updog', 'signpost', 'apiserver', 'apiclient', 'host-boot', 'lz4-worker']) {
    t.regex(await debugfs(`stat /usr/lib/brl/${bundle}.js`), /Type: regular/, bundle);
  }
  const updogToml = parse(await debugfs('cat /etc/updog.toml')) as Record<string, unknown>;
  t.like(updogToml, { metadata_base_url: 'http://127.0.0.1:8080/dev/x86_64/', targets_base_url: 'http://127.0.0.1:8080/targets/', seed: 0 });
  t.is(await debugfs('cat /usr/share/updog/root.json'), rootJsonText);

  // storewolf's input links to the merged defaults, which name the same repository as updog.toml.
  t.regex(await debugfs('stat /etc/storewolf/defaults.toml'), /Fast link dest: "\.\.\/\.\.\/usr\/share\/storewolf\/dev\.toml"/);
  const defaults = parse(await debugfs('cat /usr/share/storewolf/dev.toml')) as { settings: { updates: Record<string, unknown>; motd: string } };
  t.is(defaults.settings.updates['metadata-base-url'], updogToml.metadata_base_url);
  t.is(defaults.settings.updates['targets-base-url'], updogToml.targets_base_url);
  t.is(defaults.settings.motd, 'Welcome to Bottlerocket!');
  t.regex(await debugfs('cat /usr/share/brl/settings-model.toml'), /groups = \[.*"updates".*\]/);
  t.regex(await debugfs('cat /usr/share/templates/updog-toml'), /metadata_base_url = "\{\{\{settings\.updates\.metadata-base-url\}\}\}"/);
});
