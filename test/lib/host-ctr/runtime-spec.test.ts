import test from 'ava';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hostContainerSpec } from '../../../src/lib/host/host-ctr/runtime-spec.ts';

function spec(root: string, superpowered: boolean): { process: { selinuxLabel?: string } } {
  return hostContainerSpec({ name: 'admin', superpowered, image: { created: '1970-01-01T00:00:00Z', architecture: 'amd64', os: 'linux', config: { Cmd: ['/bin/sh'] }, rootfs: { type: 'layers', diff_ids: [] }, history: [] }, host: { root, containerDir: join(root, 'local/host-containers/admin') } }) as { process: { selinuxLabel?: string } };
}

test('host containers run in the policy\'s domains where the host has SELinux on, and without a label where it is off (runc would refuse one)', (t) => {
  const root = mkdtempSync(join(tmpdir(), 'brl-spec-root-'));
  t.is(spec(root, true).process.selinuxLabel, undefined);
  t.is(spec(root, false).process.selinuxLabel, undefined);
  mkdirSync(join(root, 'sys/fs/selinux'), { recursive: true });
  writeFileSync(join(root, 'sys/fs/selinux/enforce'), '1');
  t.is(spec(root, true).process.selinuxLabel, 'system_u:system_r:super_t:s0');
  t.is(spec(root, false).process.selinuxLabel, 'system_u:system_r:control_t:s0');
});
