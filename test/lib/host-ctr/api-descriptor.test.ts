import test from 'ava';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { descriptorFile, pinnedDescriptorModule } from '../../../src/lib/containerd/api-protos.ts';

test('the checked-in containerd API descriptor is what the pinned containerd 1.6.20 protos give', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'brl-containerd-protos-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const generated = pinnedDescriptorModule(dir);
  t.is(generated, await readFile(descriptorFile, 'utf8'), 'run `npx node src/lib/containerd/api-protos.ts` after changing the pin');
  for (const service of ['Containers', 'Content', 'Diff', 'Images', 'Leases', 'Snapshots', 'Tasks', 'Version']) t.true(generated.includes(`"${service}": {\n`), service);
});
