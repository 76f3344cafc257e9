// signpost: reads and changes the A/B boot flags in a disk's GPT; no oclif, no AWS SDK.
import { signpostMain } from '../lib/signpost/cli.ts';

process.exitCode = await signpostMain(process.argv.slice(2), {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
});
