import test from 'ava';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { brl } from '../helpers/cli.ts';

test('brl doctor --json lists every tool with its path', async (t) => {
  const { stdout } = await brl(['doctor', '--json']);
  const result = JSON.parse(stdout) as { tools: { command: string; path?: string }[]; missing: { build: string[] } };
  const rpmbuild = result.tools.find((tool) => tool.command === 'rpmbuild');
  const { stdout: which } = await promisify(execFile)('sh', ['-c', 'command -v rpmbuild']);
  t.is(rpmbuild?.path, which.trim());
  t.deepEqual(result.missing.build, []);
});
