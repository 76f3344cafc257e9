import test from 'ava';
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { forwardRelayPath } from '../../../src/lib/vm/qemu-args.ts';

/** Runs the relay as QEMU does for one guest connection: the connection is its stdin and stdout. */
function relay(port: number, request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [forwardRelayPath, String(port)], { stdio: ['pipe', 'pipe', 'inherit'] });
    let answer = '';
    child.stdout.on('data', (chunk: Buffer) => (answer += chunk.toString()));
    child.on('error', reject);
    child.on('close', () => resolve(answer));
    child.stdin.end(request);
  });
}

test('every guest connection gets its own relay to 127.0.0.1:PORT, both ways, several at once', async (t) => {
  const server = createServer((socket) => {
    let got = '';
    socket.on('data', (chunk) => (got += chunk.toString()));
    socket.on('end', () => socket.end(`echo ${got}`));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => server.close());
  const port = (server.address() as { port: number }).port;
  const answers = await Promise.all(['one', 'two', 'three'].map((request) => relay(port, request)));
  t.deepEqual(answers, ['echo one', 'echo two', 'echo three']);
});
