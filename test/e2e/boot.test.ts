// The booted host, in one VM under TCG: OVMF → GRUB gptprio → verity-init → systemd → the boot
// units → API ready through the bridge. The rest of the VM suite is `npm run test:vm` (test/vm/).
import test from 'ava';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { devBuilder, osDiskOf } from '../helpers/dev-image.ts';
import { bootVm } from '../helpers/vm.ts';

const buildDev = devBuilder('e2e-boot');

test('the dev image boots under UEFI to API ready; fw_cfg user data sets motd; systemd runs from the verified root', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'brl-boot-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const userData = join(dir, 'user-data.toml');
  writeFileSync(userData, '[settings]\nmotd = "booted by brl vm run"\n');
  const vm = await bootVm(t, { image: osDiskOf(await buildDev()), userData });
  t.log(`API ready after ${vm.readySeconds.toFixed(1)} s (TCG, UEFI)`);

  // --timeout bounded only the wait: the supervisor keeps the ready VM running until it is stopped.
  t.false('timeoutSeconds' in (JSON.parse(readFileSync(join(vm.stateDir, 'vm.json'), 'utf8')) as object));
  const { stdout } = await vm.apiclient('get', 'settings.motd');
  t.deepEqual(JSON.parse(stdout), { settings: { motd: 'booted by brl vm run' } });
  const os = JSON.parse((await vm.api('GET', '/os')).body) as { variant_id: string };
  t.is(os.variant_id, 'dev');
  // The order of the chain, as the console saw it.
  const consoleText = vm.console();
  const steps = [/verity-init: verified root mounted read-only \(ext4\)/, /systemd\[1\]: systemd 252/, /Finished .*prepare-local\.service/, /Started .*apiserver\.service/];
  const positions = steps.map((step) => consoleText.search(step));
  t.true(positions.every((position) => position >= 0), `missing on the console: ${steps.filter((_, i) => (positions[i] ?? -1) < 0).join(', ')}`);
  t.deepEqual([...positions].sort((a, b) => a - b), positions, 'the boot steps appear in order');
});
