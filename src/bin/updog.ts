// updog: finds and applies signed OS updates to the inactive partition set; no oclif, no AWS SDK.
import { updogMain } from '../lib/updog/cli.ts';

process.exitCode = await updogMain(process.argv.slice(2), {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
});
