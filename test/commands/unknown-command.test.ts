import test from 'ava';
import { brl } from '../helpers/cli.ts';

test('a mistyped command is a usage error that suggests the nearest command', async (t) => {
  const result = await brl(['repo', 'bild']);
  t.is(result.exitCode, 2);
  t.regex(result.stderr, /"repo bild" is not a brl command/);
  t.regex(result.stderr, /did you mean brl repo build\?/);
  t.notRegex(result.stderr, /\n\s+at /);
});

test('an unknown command under --json prints one error envelope', async (t) => {
  const result = await brl(['nosuchcmd', '--json']);
  t.is(result.exitCode, 2);
  const parsed = JSON.parse(result.stdout) as { error: { code: string; exitCode: number; hint: string } };
  t.is(parsed.error.code, 'UNKNOWN_COMMAND');
  t.is(parsed.error.exitCode, 2);
  t.is(parsed.error.hint, 'run brl help to list the commands');
});
