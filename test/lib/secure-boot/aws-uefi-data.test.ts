// EC2's "AMZNUEFI" UEFI variable store: checked against python-uefivars' test vector and decoded again by python3's own zlib.
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { awsUefiDataDictionary } from '../../../src/lib/secure-boot/aws-uefi-data-dictionary.ts';
import {
  assertUefiDataFits,
  crc32c,
  decodeAwsUefiData,
  efiTime,
  encodeAwsUefiData,
  maxUefiDataBytes,
  secureBootCertificatesIn,
  secureBootUefiData,
} from '../../../src/lib/secure-boot/aws-uefi-data.ts';
import { efiGuids } from '../../../src/lib/secure-boot/efi-variables.ts';
import { initKeySet, loadFirmwareCertificates } from '../../../src/lib/secure-boot/key-set.ts';

const fixtures = join(import.meta.dirname, '../../fixtures/aws-uefi-data');
const scratch = mkdtempSync(join(tmpdir(), 'brl-uefi-data-'));
test.after.always(() => rmSync(scratch, { recursive: true, force: true }));
const certificates = initKeySet(join(scratch, 'keys'), { organization: 'brl test', validDays: 30, rsaBits: 2048 }).then((set) => loadFirmwareCertificates(set.dir));
const writtenAt = new Date('2026-03-04T05:06:07Z');

test('CRC32C gives the standard check value for "123456789"', (t) => {
  t.is(crc32c(Buffer.from('123456789')), 0xe3069283);
  t.is(crc32c(Buffer.alloc(0)), 0);
});

test('the v0 dictionary is the one EC2 streams name (Adler-32 0x6bb7d9f7 in the zlib header of python-uefivars\' t02.aws)', (t) => {
  const blob = Buffer.from(readFileSync(join(fixtures, 't02.aws'), 'utf8'), 'base64');
  t.is(blob.readUInt32BE(18), 0x6bb7d9f7);
  t.is(awsUefiDataDictionary.length, 11381);
});

test('decodes python-uefivars\' test vector t02.aws to the variables its t02.json lists', (t) => {
  const expected = JSON.parse(readFileSync(join(fixtures, 't02.expected.json'), 'utf8')) as Array<{ name: string; guid: string; attr: number; data?: string; dataStart?: string; dataEnd?: string }>;
  const variables = decodeAwsUefiData(readFileSync(join(fixtures, 't02.aws'), 'utf8'), 't02.aws');
  t.deepEqual(variables.map((v) => [v.name, v.vendorGuid, v.attributes]), expected.map((e) => [e.name, e.guid, e.attr]));
  for (const [index, entry] of expected.entries()) {
    const data = variables[index]!.data.toString('hex');
    if (entry.data !== undefined) t.is(data, entry.data, entry.name);
    t.true(data.startsWith(entry.dataStart ?? '') && data.endsWith(entry.dataEnd ?? ''), entry.name);
  }
  const authenticated = variables.filter((v) => v.attributes & 0x20);
  t.is(authenticated.length, 5);
  t.true(authenticated.every((v) => v.timestamp!.equals(Buffer.alloc(16)) && v.digest!.equals(Buffer.alloc(32))));
});

test('encoding and decoding give back every field, the blob starts with AMZNUEFI and the same input gives the same bytes', (t) => {
  const variables = [
    { name: 'Lang', vendorGuid: efiGuids.globalVariable, attributes: 7, data: Buffer.from('eng\0') },
    { name: 'db', vendorGuid: efiGuids.imageSecurityDatabase, attributes: 0x27, data: Buffer.from('0102', 'hex'), timestamp: efiTime(writtenAt), digest: Buffer.alloc(32, 9) },
  ];
  const blob = encodeAwsUefiData(variables);
  t.is(Buffer.from(blob, 'base64').subarray(0, 8).toString('latin1'), 'AMZNUEFI');
  t.deepEqual(decodeAwsUefiData(blob, 'round trip'), variables);
  t.is(encodeAwsUefiData(variables), blob);
});

test('EFI_TIME holds the UTC date and time with nanoseconds, time zone and daylight zero', (t) => {
  t.is(efiTime(writtenAt).toString('hex'), 'ea070304050607000000000000000000');
});

test('the Secure Boot store holds db, KEK and PK as NV|BS|RT|time-based authenticated variables with the key set\'s certificates', async (t) => {
  const keys = await certificates;
  const blob = secureBootUefiData(keys, writtenAt);
  const variables = decodeAwsUefiData(blob, 'publish');
  t.deepEqual(variables.map((v) => [v.name, v.vendorGuid, v.attributes]), [
    ['db', efiGuids.imageSecurityDatabase, 0x27],
    ['KEK', efiGuids.globalVariable, 0x27],
    ['PK', efiGuids.globalVariable, 0x27],
  ]);
  t.true(variables.every((v) => v.timestamp!.equals(efiTime(writtenAt))));
  t.deepEqual(secureBootCertificatesIn(variables), { pk: [keys.pk], kek: [keys.kek], db: [keys.db] });
  t.is(secureBootUefiData(keys, writtenAt), blob, 'two publishes of one build give the same bytes');
  t.true(blob.length < maxUefiDataBytes);
});

test('python3\'s zlib with the same dictionary reads the blob: magic, CRC32C, names, GUIDs, attributes and certificates', async (t) => {
  const keys = await certificates;
  const blobPath = join(scratch, 'uefi-data');
  const dictionaryPath = join(scratch, 'dictionary');
  writeFileSync(blobPath, secureBootUefiData(keys, writtenAt));
  writeFileSync(dictionaryPath, awsUefiDataDictionary);
  const script = String.raw`
import base64, json, struct, sys, uuid, zlib
blob = base64.b64decode(open(sys.argv[1]).read())
def crc32c(data):
    crc = 0xffffffff
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82f63b78 if crc & 1 else crc >> 1
    return crc ^ 0xffffffff
magic, crc, version = blob[:8], struct.unpack('<I', blob[8:12])[0], struct.unpack('<I', blob[12:16])[0]
raw = zlib.decompressobj(zdict=open(sys.argv[2], 'rb').read()).decompress(blob[16:])
pos = 0
def take(size):
    global pos
    pos += size
    return raw[pos - size:pos]
def field():
    return take(struct.unpack('<Q', take(8))[0])
variables = []
for _ in range(struct.unpack('<Q', take(8))[0]):
    name, data, guid, attr = field().decode(), field(), str(uuid.UUID(bytes_le=take(16))), struct.unpack('<I', take(4))[0]
    timestamp, digest = (take(16).hex(), field().hex()) if attr & 0x20 else (None, None)
    variables.append({'name': name, 'guid': guid, 'attr': attr, 'cert': data[44:].hex(), 'timestamp': timestamp, 'digest': digest})
print(json.dumps({'magic': magic.decode(), 'crcOk': crc == crc32c(blob[12:]), 'version': version, 'rest': len(raw) - pos, 'variables': variables}))
`;
  const decoded = JSON.parse(execFileSync('python3', ['-c', script, blobPath, dictionaryPath], { encoding: 'utf8' })) as {
    magic: string; crcOk: boolean; version: number; rest: number;
    variables: Array<{ name: string; guid: string; attr: number; cert: string; timestamp: string; digest: string }>;
  };
  t.like(decoded, { magic: 'AMZNUEFI', crcOk: true, version: 0, rest: 0 });
  t.deepEqual(decoded.variables.map((v) => [v.name, v.guid, v.attr, v.cert]), [
    ['db', 'd719b2cb-3d3a-4596-a3bc-dad00e67656f', 0x27, keys.db.toString('hex')],
    ['KEK', '8be4df61-93ca-11d2-aa0d-00e098032b8c', 0x27, keys.kek.toString('hex')],
    ['PK', '8be4df61-93ca-11d2-aa0d-00e098032b8c', 0x27, keys.pk.toString('hex')],
  ]);
  t.true(decoded.variables.every((v) => v.timestamp === efiTime(writtenAt).toString('hex') && v.digest === '00'.repeat(32)));
});

test('refuses a blob whose CRC32C does not match, one without the magic, and text that is not base64', (t) => {
  const blob = Buffer.from(readFileSync(join(fixtures, 't02.aws'), 'utf8'), 'base64');
  const altered = Buffer.from(blob);
  altered[200] = altered[200]! ^ 0xff;
  t.throws(() => decodeAwsUefiData(altered.toString('base64'), 'altered'), { code: 'BAD_UEFI_DATA', message: /altered .*CRC32C/ });
  t.throws(() => decodeAwsUefiData(Buffer.from('NOTUEFI!0000000000000000').toString('base64'), 'other'), { code: 'BAD_UEFI_DATA', message: /no AMZNUEFI magic/ });
  t.throws(() => decodeAwsUefiData('not base64!', 'text'), { code: 'BAD_UEFI_DATA', message: /not base64/ });
});

test('refuses UefiData over EC2\'s 64 KiB limit, naming its size', (t) => {
  t.notThrows(() => assertUefiDataFits('A'.repeat(maxUefiDataBytes), 'exact'));
  t.throws(() => assertUefiDataFits('A'.repeat(maxUefiDataBytes + 4), 'big'), { code: 'UEFI_DATA_TOO_LARGE', message: /65540 bytes .* at most 65536/ });
});
