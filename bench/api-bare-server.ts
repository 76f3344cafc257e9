// The baseline for bench/api.ts: a bare node:http server on a Unix socket answering the same JSON, doing no work.
// Run: node bench/api-bare-server.ts SOCKET SETTINGS_JSON_FILE; prints "ready", serves until stdin closes.
import { readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';

const [socket, settingsFile] = process.argv.slice(2) as [string, string];
const settings = readFileSync(settingsFile, 'utf8');
const committed = JSON.stringify(['settings.motd']);
rmSync(socket, { force: true });
const server = createServer({ keepAlive: true }, (request, response) => {
  request.resume();
  request.on('end', () => {
    if (request.method === 'GET') {
      response.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(settings) });
      response.end(settings);
    } else if (request.method === 'PATCH') {
      response.writeHead(204);
      response.end();
    } else {
      response.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(committed) });
      response.end(committed);
    }
  });
});
server.listen(socket, () => process.stdout.write('ready\n'));
process.stdin.resume();
process.stdin.on('end', () => server.close(() => process.exit(0)));
