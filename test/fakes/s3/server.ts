// s3rver on 127.0.0.1 behind a recording proxy that also serves the multipart calls s3rver 3.7 lacks.
//
// s3rver implements CreateMultipartUpload, UploadPart and CompleteMultipartUpload and keeps each
// pending upload on disk (`<bucket>/._S3rver_uploads/<uploadId>/{key,metadata,<n>,<n>.md5}`), but
// answers ListMultipartUploads, ListParts and AbortMultipartUpload with NotImplemented or
// MethodNotAllowed. The proxy answers those three from that same directory, in S3's XML, so the
// real SDK runs every call over HTTP against one consistent store. It also logs every request,
// counts parts in flight, and can fail the uploads of one part number.
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, stat, utimes } from 'node:fs/promises';
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import S3rver from 's3rver';

export type S3Operation =
  | 'PutObject' | 'GetObject' | 'ListObjectsV2'
  | 'CreateMultipartUpload' | 'UploadPart' | 'CompleteMultipartUpload'
  | 'ListMultipartUploads' | 'ListParts' | 'AbortMultipartUpload' | 'Other';

export interface LoggedS3Request {
  operation: S3Operation;
  method: string;
  /** The object key (no bucket), '' for bucket-level calls. */
  key: string;
  partNumber?: number;
  uploadId?: string;
  /** Request body size from Content-Length. */
  bytes: number;
  status: number;
}

export interface S3ProxyFaults {
  /** UploadPart requests for this part number are answered 500 InternalError, every time. */
  failPartNumber?: number;
}

export interface FakeS3 {
  /** Endpoint for AWS_ENDPOINT_URL_S3 (path-style). */
  url: string;
  bucket: string;
  log: LoggedS3Request[];
  faults: S3ProxyFaults;
  /** ETags ListObjectsV2 reports instead of s3rver's for these keys (s3rver gives multipart objects a plain MD5, S3 does not). */
  listedEtags: Map<string, string>;
  /** Most UploadPart requests in flight at once since the start. */
  maxPartsInFlight: number;
  /** Resolves once no request is being handed to s3rver: a killed client's last part may still be landing. */
  idle(): Promise<void>;
  /** Makes a pending upload look started `ageMs` ago (its Initiated time). */
  ageUpload(uploadId: string, ageMs: number): Promise<void>;
  close(): Promise<void>;
}

export interface FakeS3Options {
  /** Entries per ListMultipartUploads / ListParts page (S3: 1000), small to exercise paging. */
  pageSize?: number;
  /** Delay before answering each UploadPart, so parallel parts overlap measurably. */
  partDelayMs?: number;
}

const bucketName = 'updates';

export async function startFakeS3(options: FakeS3Options = {}): Promise<FakeS3> {
  const directory = await mkdtemp(join(tmpdir(), 'brl-s3rver-'));
  const s3 = new S3rver({ port: 0, address: '127.0.0.1', silent: true, directory, configureBuckets: [{ name: bucketName, configs: [] }] });
  const { port } = await s3.run();
  const pageSize = options.pageSize ?? 1000;
  const uploadsDir = (bucket: string) => join(directory, bucket, '._S3rver_uploads');
  let partsInFlight = 0;
  const forwarding = { count: 0 };

  const fake: FakeS3 = {
    url: '',
    bucket: bucketName,
    log: [],
    faults: {},
    listedEtags: new Map(),
    maxPartsInFlight: 0,
    async idle() {
      while (forwarding.count > 0) await sleep(10);
    },
    async ageUpload(uploadId, ageMs) {
      const when = new Date(Date.now() - ageMs);
      await utimes(join(uploadsDir(bucketName), uploadId, 'key'), when, when);
    },
    close: async () => {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await s3.close();
      await rm(directory, { recursive: true, force: true });
    },
  };

  const server: Server = createServer((incoming, outgoing) => {
    const url = new URL(incoming.url ?? '/', 'http://fake');
    const [, bucket = '', ...keyParts] = url.pathname.split('/');
    const key = keyParts.map(decodeURIComponent).join('/');
    const query = url.searchParams;
    const operation = classify(incoming.method ?? 'GET', key, query);
    const entry: LoggedS3Request = {
      operation,
      method: incoming.method ?? 'GET',
      key,
      ...(query.has('partNumber') ? { partNumber: Number(query.get('partNumber')) } : {}),
      ...(query.has('uploadId') ? { uploadId: query.get('uploadId')! } : {}),
      bytes: Number(incoming.headers['content-length'] ?? 0),
      status: 0,
    };
    fake.log.push(entry);
    const answer = (status: number, body: string) => {
      entry.status = status;
      outgoing.writeHead(status, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(body) });
      outgoing.end(body);
    };
    const handled = (async () => {
      if (operation === 'ListMultipartUploads') return answer(...await listUploads(uploadsDir(decodeURIComponent(bucket)), query, pageSize));
      if (operation === 'ListParts') return answer(...await listParts(uploadsDir(decodeURIComponent(bucket)), key, query, pageSize));
      if (operation === 'AbortMultipartUpload') return answer(...await abortUpload(uploadsDir(decodeURIComponent(bucket)), key, query.get('uploadId') ?? ''));
      if (operation === 'UploadPart' && entry.partNumber === fake.faults.failPartNumber) {
        await drain(incoming);
        return answer(500, errorXml('InternalError', 'We encountered an internal error. Please try again.'));
      }
      if (operation === 'UploadPart') {
        partsInFlight += 1;
        fake.maxPartsInFlight = Math.max(fake.maxPartsInFlight, partsInFlight);
        outgoing.on('close', () => { partsInFlight -= 1; });
      }
      if (operation === 'ListObjectsV2' && fake.listedEtags.size > 0) return forwardRewritten(incoming, outgoing, port, entry, fake.listedEtags);
      forward(incoming, outgoing, port, entry, operation === 'UploadPart' ? options.partDelayMs ?? 0 : 0, forwarding);
    })();
    handled.catch((error: unknown) => answer(500, errorXml('InternalError', String(error))));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  fake.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return fake;
}

function classify(method: string, key: string, query: URLSearchParams): S3Operation {
  if (!key) {
    if (method === 'GET' && query.has('uploads')) return 'ListMultipartUploads';
    if (method === 'GET' && query.get('list-type') === '2') return 'ListObjectsV2';
    return 'Other';
  }
  if (method === 'POST') return query.has('uploads') ? 'CreateMultipartUpload' : query.has('uploadId') ? 'CompleteMultipartUpload' : 'Other';
  if (method === 'PUT') return query.has('uploadId') ? 'UploadPart' : 'PutObject';
  if (method === 'GET') return query.has('uploadId') ? 'ListParts' : 'GetObject';
  if (method === 'DELETE' && query.has('uploadId')) return 'AbortMultipartUpload';
  return 'Other';
}

function forward(incoming: IncomingMessage, outgoing: ServerResponse, port: number, entry: LoggedS3Request, delayMs: number, forwarding: { count: number }): void {
  forwarding.count += 1;
  const upstream = request({ host: '127.0.0.1', port, method: incoming.method, path: incoming.url, headers: incoming.headers }, (response) => {
    void sleep(delayMs).then(() => {
      entry.status = response.statusCode ?? 502;
      outgoing.writeHead(response.statusCode ?? 502, response.headers);
      response.pipe(outgoing);
    });
  });
  // s3rver has stored (or dropped) the body once it answers or the request is gone.
  let done = false;
  const finish = (): void => {
    if (!done) forwarding.count -= 1;
    done = true;
  };
  upstream.once('response', finish);
  upstream.once('close', finish);
  // A client that goes away (a killed publish) leaves s3rver an unfinished body: end that request too.
  incoming.on('error', () => upstream.destroy());
  incoming.on('close', () => {
    if (!incoming.complete) upstream.destroy();
  });
  upstream.on('error', () => outgoing.destroy());
  incoming.pipe(upstream);
}

function forwardRewritten(incoming: IncomingMessage, outgoing: ServerResponse, port: number, entry: LoggedS3Request, etags: Map<string, string>): void {
  const upstream = request({ host: '127.0.0.1', port, method: incoming.method, path: incoming.url, headers: incoming.headers }, async (response) => {
    const chunks: Buffer[] = [];
    for await (const chunk of response) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks).toString('utf8').replace(/<Contents>(.*?)<\/Contents>/gs, (contents: string) => {
      const key = /<Key>(.*?)<\/Key>/s.exec(contents)?.[1];
      const etag = key === undefined ? undefined : etags.get(unescape(key));
      return etag === undefined ? contents : contents.replace(/<ETag>.*?<\/ETag>/s, `<ETag>&quot;${etag}&quot;</ETag>`);
    });
    entry.status = response.statusCode ?? 502;
    const headers = { ...response.headers, 'content-length': String(Buffer.byteLength(body)) };
    delete headers['transfer-encoding'];
    outgoing.writeHead(response.statusCode ?? 502, headers);
    outgoing.end(body);
  });
  incoming.pipe(upstream);
}

async function drain(incoming: IncomingMessage): Promise<void> {
  for await (const _chunk of incoming);
}

interface StoredUpload {
  uploadId: string;
  key: string;
  initiated: Date;
}

async function readUploads(dir: string): Promise<StoredUpload[]> {
  if (!existsSync(dir)) return [];
  const uploads: StoredUpload[] = [];
  for (const uploadId of await readdir(dir)) {
    const keyFile = join(dir, uploadId, 'key');
    if (!existsSync(keyFile)) continue;
    uploads.push({ uploadId, key: await readFile(keyFile, 'utf8'), initiated: (await stat(keyFile)).mtime });
  }
  // S3 orders uploads by key, then by initiation time.
  return uploads.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : a.initiated.getTime() - b.initiated.getTime()));
}

async function listUploads(dir: string, query: URLSearchParams, pageSize: number): Promise<[number, string]> {
  if (!existsSync(join(dir, '..'))) return [404, errorXml('NoSuchBucket', 'The specified bucket does not exist')];
  if (query.has('delimiter')) return [501, errorXml('NotImplemented', 'delimiter is not implemented by this fake')];
  const prefix = query.get('prefix') ?? '';
  const keyMarker = query.get('key-marker') ?? '';
  const uploadIdMarker = query.get('upload-id-marker') ?? '';
  const maxUploads = Math.min(Number(query.get('max-uploads') ?? 1000), pageSize);
  const all = await readUploads(dir);
  const markerIndex = keyMarker ? all.findIndex((upload) => upload.key === keyMarker && (!uploadIdMarker || upload.uploadId === uploadIdMarker)) : -1;
  const after = all.filter((upload, index) => upload.key.startsWith(prefix) && (
    !keyMarker ? true : uploadIdMarker && markerIndex >= 0 ? index > markerIndex : upload.key > keyMarker));
  const page = after.slice(0, maxUploads);
  const truncated = after.length > page.length;
  const last = page.at(-1);
  const body = [
    '<?xml version="1.0" encoding="UTF-8"?>',
    '<ListMultipartUploadsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">',
    `<Bucket>${bucketName}</Bucket><KeyMarker>${escape(keyMarker)}</KeyMarker><UploadIdMarker>${escape(uploadIdMarker)}</UploadIdMarker>`,
    truncated && last ? `<NextKeyMarker>${escape(last.key)}</NextKeyMarker><NextUploadIdMarker>${last.uploadId}</NextUploadIdMarker>` : '',
    `<Prefix>${escape(prefix)}</Prefix><MaxUploads>${maxUploads}</MaxUploads><IsTruncated>${truncated}</IsTruncated>`,
    ...page.map((upload) => `<Upload><Key>${escape(upload.key)}</Key><UploadId>${upload.uploadId}</UploadId>`
      + '<Initiator><ID>123456789000</ID><DisplayName>S3RVER</DisplayName></Initiator><Owner><ID>123456789000</ID><DisplayName>S3RVER</DisplayName></Owner>'
      + `<StorageClass>STANDARD</StorageClass><Initiated>${upload.initiated.toISOString()}</Initiated></Upload>`),
    '</ListMultipartUploadsResult>',
  ].join('');
  return [200, body];
}

async function findUpload(dir: string, key: string, uploadId: string): Promise<boolean> {
  if (!/^[0-9a-f]+$/.test(uploadId)) return false;
  const keyFile = join(dir, uploadId, 'key');
  return existsSync(keyFile) && (await readFile(keyFile, 'utf8')) === key;
}

async function listParts(dir: string, key: string, query: URLSearchParams, pageSize: number): Promise<[number, string]> {
  const uploadId = query.get('uploadId') ?? '';
  if (!(await findUpload(dir, key, uploadId))) return [404, noSuchUpload(uploadId)];
  const marker = Number(query.get('part-number-marker') ?? 0);
  const maxParts = Math.min(Number(query.get('max-parts') ?? 1000), pageSize);
  const names = await readdir(join(dir, uploadId));
  // A part counts once its MD5 is written: s3rver writes that after the last byte.
  const numbers = names.filter((name) => /^\d+$/.test(name) && names.includes(`${name}.md5`)).map(Number).filter((n) => n > marker).sort((a, b) => a - b);
  const page = numbers.slice(0, maxParts);
  const truncated = numbers.length > page.length;
  const parts = await Promise.all(page.map(async (n) => {
    const info = await stat(join(dir, uploadId, String(n)));
    const md5 = (await readFile(join(dir, uploadId, `${n}.md5`), 'utf8')).trim();
    return `<Part><PartNumber>${n}</PartNumber><LastModified>${info.mtime.toISOString()}</LastModified><ETag>"${md5}"</ETag><Size>${info.size}</Size></Part>`;
  }));
  const body = [
    '<?xml version="1.0" encoding="UTF-8"?>',
    '<ListPartsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">',
    `<Bucket>${bucketName}</Bucket><Key>${escape(key)}</Key><UploadId>${uploadId}</UploadId>`,
    `<PartNumberMarker>${marker}</PartNumberMarker><NextPartNumberMarker>${page.at(-1) ?? marker}</NextPartNumberMarker>`,
    `<MaxParts>${maxParts}</MaxParts><IsTruncated>${truncated}</IsTruncated><StorageClass>STANDARD</StorageClass>`,
    ...parts,
    '</ListPartsResult>',
  ].join('');
  return [200, body];
}

async function abortUpload(dir: string, key: string, uploadId: string): Promise<[number, string]> {
  if (!(await findUpload(dir, key, uploadId))) return [404, noSuchUpload(uploadId)];
  await rm(join(dir, uploadId), { recursive: true, force: true });
  return [204, ''];
}

function noSuchUpload(uploadId: string): string {
  return errorXml('NoSuchUpload', 'The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.', `<UploadId>${escape(uploadId)}</UploadId>`);
}

function errorXml(code: string, message: string, extra = ''): string {
  return `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>${escape(message)}</Message>${extra}<RequestId>fake</RequestId></Error>`;
}

function unescape(text: string): string {
  return text.replaceAll('&quot;', '"').replaceAll('&gt;', '>').replaceAll('&lt;', '<').replaceAll('&amp;', '&');
}

function escape(text: string): string {
  return text.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;').replaceAll('"', '&quot;');
}
