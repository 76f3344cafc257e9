// brl-tuf-client: updog's TUF client as a tuf-conformance client-under-test (see lib/updog/tuf-client.ts).
import { runTufClient } from '../lib/updog/tuf-client.ts';

process.exitCode = await runTufClient(process.argv.slice(2), (line) => process.stderr.write(`${line}\n`));
