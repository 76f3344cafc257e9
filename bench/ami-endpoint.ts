// The fake AWS endpoint in its own process for bench/ami.ts, so serving and uploading do not share one core.
// Run: node bench/ami-endpoint.ts [--latency-ms 0]; prints the URL, serves until stdin closes.
import { parseArgs } from 'node:util';
import { startFakeAws } from '../test/fakes/aws/server.ts';

const { values } = parseArgs({ options: { 'latency-ms': { type: 'string', default: '0' } } });
const fake = await startFakeAws({ latencyMs: Number(values['latency-ms']) });
process.stdout.write(`${fake.url}\n`);
process.stdin.resume();
process.stdin.on('end', () => void fake.close());
