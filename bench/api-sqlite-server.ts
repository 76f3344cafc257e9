// The embedded-database baseline for bench/api-commit.ts: node:http on a Unix socket whose commit writes the
// PATCHed keys into node:sqlite (WAL, synchronous=FULL), one SQL transaction per commit, as a user of SQLite would.
// Run: node bench/api-sqlite-server.ts SOCKET DATABASE; prints "ready", serves until stdin closes.
import { rmSync } from 'node:fs';
import { createServer, type IncomingMessage } from 'node:http';
import { DatabaseSync } from 'node:sqlite';

const [socket, databasePath] = process.argv.slice(2) as [string, string];
const database = new DatabaseSync(databasePath);
database.exec('PRAGMA journal_mode=WAL');
database.exec('PRAGMA synchronous=FULL');
database.exec('CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID');
const upsert = database.prepare('INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value');

/** Pending changes per transaction, in memory, as the apiserver keeps them. */
const pending = new Map<string, Map<string, string>>();

function flatten(value: unknown, prefix: string, into: Map<string, string>): void {
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
    for (const [field, child] of Object.entries(value)) flatten(child, `${prefix}.${field}`, into);
  } else {
    into.set(prefix, JSON.stringify(value));
  }
}

async function readBody(request: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

rmSync(socket, { force: true });
const server = createServer({ keepAlive: true }, (request, response) => {
  void (async () => {
    const url = new URL(request.url ?? '/', 'http://localhost');
    const tx = url.searchParams.get('tx') ?? 'default';
    const body = await readBody(request);
    if (request.method === 'PATCH' && url.pathname === '/settings') {
      const changes = pending.get(tx) ?? new Map<string, string>();
      flatten(JSON.parse(body), 'settings', changes);
      pending.set(tx, changes);
      response.writeHead(204);
      response.end();
    } else if (request.method === 'POST' && url.pathname === '/tx/commit') {
      const changes = pending.get(tx);
      if (!changes) {
        response.writeHead(422, { 'content-type': 'text/plain' });
        response.end('Tried to commit with no pending changes');
        return;
      }
      database.exec('BEGIN');
      for (const [key, value] of changes) upsert.run(key, value);
      database.exec('COMMIT');
      pending.delete(tx);
      const committed = JSON.stringify([...changes.keys()]);
      response.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(committed) });
      response.end(committed);
    } else {
      response.writeHead(404);
      response.end();
    }
  })();
});
server.listen(socket, () => process.stdout.write('ready\n'));
process.stdin.resume();
process.stdin.on('end', () => {
  server.close(() => {
    database.close();
    process.exit(0);
  });
  server.closeAllConnections();
});
