import test from 'ava';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { runHostCommand } from '../../../src/lib/host/commands.ts';

const commandsModule = fileURLToPath(new URL('../../../src/lib/host/commands.ts', import.meta.url));

test('a command past its timeout is killed', async (t) => {
  const outcome = await runHostCommand(['sleep', '10'], { root: '/', timeoutMs: 200 });
  t.is(outcome.status, 'failed');
  t.is(outcome.signal, 'SIGKILL');
});

test('a program that fails to start leaves nothing that keeps the process alive', async (t) => {
  const script = `import { runHostCommand } from ${JSON.stringify(commandsModule)};
const outcome = await runHostCommand(['/nonexistent/brl-no-such-program'], { root: '/' });
console.log(outcome.status, outcome.note);`;
  const started = Date.now();
  const stdout = await new Promise<string>((resolve, reject) => {
    execFile(process.execPath, ['--input-type=module', '-e', script], { timeout: 20_000 }, (error, out) =>
      error ? reject(error) : resolve(out),
    );
  });
  t.regex(stdout, /^failed spawn \/nonexistent\/brl-no-such-program ENOENT/);
  t.true(Date.now() - started < 10_000, 'the process exits at once instead of waiting for the 120 s timer');
});
