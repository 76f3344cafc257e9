// Publishing to a real S3-compatible server (s3rver) on 127.0.0.1, through a proxy that records request order.
import test from 'ava';
import { createServer, request, type Server } from 'node:http';
import { mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import S3rver from 's3rver';
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { parseS3Location, publishToS3 } from '../../../src/lib/repo/publish.ts';
import { buildSignedRepo } from './helpers.ts';

interface Recorder {
  url: string;
  puts: string[];
  server: Server;
}

async function startS3(): Promise<{ s3: S3rver; recorder: Recorder }> {
  const s3 = new S3rver({ port: 0, address: '127.0.0.1', silent: true, directory: mkdtempSync(join(tmpdir(), 'brl-s3rver-')), configureBuckets: [{ name: 'updates', configs: [] }] });
  const { port } = await s3.run();
  const puts: string[] = [];
  const server = createServer((incoming, outgoing) => {
    if (incoming.method === 'PUT') puts.push(decodeURIComponent(new URL(incoming.url ?? '/', 'http://x').pathname));
    const upstream = request({ host: '127.0.0.1', port, method: incoming.method, path: incoming.url, headers: incoming.headers }, (response) => {
      outgoing.writeHead(response.statusCode ?? 502, response.headers);
      response.pipe(outgoing);
    });
    incoming.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const proxyPort = typeof address === 'object' && address ? address.port : 0;
  return { s3, recorder: { url: `http://127.0.0.1:${proxyPort}`, puts, server } };
}

test.serial('publish uploads targets first and timestamp.json last, then skips unchanged objects', async (t) => {
  const { s3, recorder } = await startS3();
  t.teardown(async () => {
    recorder.server.close();
    await s3.close();
  });
  process.env.AWS_ENDPOINT_URL_S3 = recorder.url;
  process.env.AWS_REGION = 'us-west-2';
  process.env.AWS_ACCESS_KEY_ID = 'S3RVER';
  process.env.AWS_SECRET_ACCESS_KEY = 'S3RVER';

  const built = await buildSignedRepo();
  const result = await publishToS3(built.outdir, parseS3Location('updates/bottlerocket'));
  const files = readdirSync(join(built.outdir, 'targets')).length + readdirSync(built.result.metadataDir).length;
  t.is(result.uploaded, files);
  const order = recorder.puts.map((path) => path.replace('/updates/bottlerocket/', ''));
  const lastTarget = Math.max(...order.map((key, index) => (key.startsWith('targets/') ? index : -1)));
  const firstMetadata = order.findIndex((key) => key.startsWith('dev/'));
  t.true(lastTarget < firstMetadata, 'every target is uploaded before any metadata');
  t.is(order.at(-1), 'dev/x86_64/timestamp.json');
  t.true(order.indexOf(`dev/x86_64/${built.result.versions.targets}.targets.json`) < order.indexOf(`dev/x86_64/${built.result.versions.snapshot}.snapshot.json`));

  const client = new S3Client({ forcePathStyle: true });
  const object = await client.send(new GetObjectCommand({ Bucket: 'updates', Key: 'bottlerocket/dev/x86_64/timestamp.json' }));
  t.deepEqual(Buffer.from(await object.Body!.transformToByteArray()), readFileSync(join(built.result.metadataDir, 'timestamp.json')));

  recorder.puts.length = 0;
  const again = await publishToS3(built.outdir, parseS3Location('s3://updates/bottlerocket/'));
  t.is(again.uploaded, 0);
  t.is(again.unchanged, files);
  t.deepEqual(recorder.puts, []);
});

test('S3 locations parse as BUCKET[/PREFIX]', (t) => {
  t.deepEqual(parseS3Location('bucket'), { bucket: 'bucket', prefix: '' });
  t.deepEqual(parseS3Location('s3://my.bucket/a/b/'), { bucket: 'my.bucket', prefix: 'a/b' });
  t.throws(() => parseS3Location('Bad_Bucket'), { message: /not BUCKET\/PREFIX/ });
});
