// Loaded by ava before each test file (package.json `ava.require`): the test process gets a
// temporary directory of its own as TMPDIR and removes it when it exits, so the test, the brl code it
// runs and the programs they spawn leave nothing behind in the system temp directory.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const testTempDir = mkdtempSync(join(tmpdir(), 'brl-test-'));
process.env.TMPDIR = testTempDir;
process.on('exit', () => rmSync(testTempDir, { recursive: true, force: true }));
