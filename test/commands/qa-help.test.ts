// Every command a user can discover explains itself: a description, examples that use its real flags, --json.
import test from 'ava';
import { Config } from '@oclif/core';
import { repoDir } from '../helpers/cli.ts';

const config = await Config.load({ root: repoDir });
// oclif lists each alias as its own entry; the command it stands for carries the help.
const commands = config.commands.filter((command) => command.id !== 'help' && !config.commands.some((other) => other.aliases.includes(command.id)));

test('oclif finds every command', (t) => {
  t.true(commands.length >= 40, `only ${commands.length} commands loaded from dist/commands`);
});

for (const command of commands) {
  test(`${command.id}: has a description, at least one example and --json`, (t) => {
    t.truthy((command.summary ?? command.description ?? '').trim(), 'a summary or description');
    t.true((command.examples ?? []).length >= 1, 'at least one example');
    t.true(command.enableJsonFlag, 'enableJsonFlag');
    for (const [name, flag] of Object.entries(command.flags)) t.truthy(flag.description, `flag --${name} has a description`);
    for (const [name, arg] of Object.entries(command.args)) t.truthy(arg.description, `argument ${name} has a description`);
  });

  test(`${command.id}: examples run this command with flags it has`, (t) => {
    const known = new Set<string>();
    for (const [name, flag] of Object.entries(command.flags)) {
      known.add(`--${name}`);
      if (flag.char) known.add(`-${flag.char}`);
      for (const alias of flag.aliases ?? []) known.add(`--${alias}`);
      if (flag.type === 'boolean' && flag.allowNo) known.add(`--no-${name}`);
    }
    const invocations = [command.id, ...command.aliases].map((id) => `<%= config.bin %> ${id.replaceAll(':', ' ')}`);
    for (const example of command.examples ?? []) {
      const text = typeof example === 'string' ? example : example.command;
      const start = text.indexOf('<%= config.bin %>');
      t.true(start >= 0 && invocations.some((invocation) => text.startsWith(invocation, start)), `example runs ${command.id}: ${text}`);
      for (const match of text.slice(start).matchAll(/(?:^|\s)(--?[a-zA-Z][\w-]*)/g)) {
        const flag = (match[1] as string).split('=')[0] as string;
        t.true(known.has(flag), `example uses unknown flag ${flag}: ${text}`);
      }
    }
  });
}
