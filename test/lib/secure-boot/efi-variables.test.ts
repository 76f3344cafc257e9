// The OVMF variable store with the project's keys: OVMF's own empty store with PK, KEK, db and SecureBootEnable written as EDK2 lays them out.
import test from 'ava';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { efiGuids, enrolledVariableStore, guidBytes, secureBootVariables, signatureOwner, x509SignatureList } from '../../../src/lib/secure-boot/efi-variables.ts';
import { initKeySet, loadFirmwareCertificates } from '../../../src/lib/secure-boot/key-set.ts';

const template = '/usr/share/OVMF/OVMF_VARS_4M.fd';
// OVMF is a host tool of the vm group; without it there is no template to enroll into.
const withTemplate = existsSync(template) ? test : test.skip;
const scratch = mkdtempSync(join(tmpdir(), 'brl-efivars-'));
test.after.always(() => rmSync(scratch, { recursive: true, force: true }));
const keys = initKeySet(join(scratch, 'keys'), { organization: 'brl test', validDays: 30, rsaBits: 2048 }).then((set) => loadFirmwareCertificates(set.dir));

/** Walks EDK2's authenticated variable headers from the start of the store, as the firmware does. */
function readVariables(store: Buffer): Array<{ name: string; guid: Buffer; attributes: number; state: number; data: Buffer }> {
  const variables = [];
  let offset = store.readUInt16LE(0x30) + 28;
  while (store.readUInt16LE(offset) === 0x55aa) {
    const nameSize = store.readUInt32LE(offset + 36);
    const dataSize = store.readUInt32LE(offset + 40);
    const name = store.subarray(offset + 60, offset + 60 + nameSize - 2).toString('utf16le');
    variables.push({ name, guid: store.subarray(offset + 44, offset + 60), attributes: store.readUInt32LE(offset + 4), state: store[offset + 2]!, data: store.subarray(offset + 60 + nameSize, offset + 60 + nameSize + dataSize) });
    offset = Math.ceil((offset + 60 + nameSize + dataSize) / 4) * 4;
  }
  return variables;
}

test('GUIDs are stored mixed-endian, as EDK2 writes EFI_GLOBAL_VARIABLE', (t) => {
  t.is(guidBytes(efiGuids.globalVariable).toString('hex'), '61dfe48bca93d211aa0d00e098032b8c');
});

test('a signature list holds one X.509 certificate with its owner and consistent sizes', (t) => {
  const certificate = Buffer.from('3082000a0102030405060708', 'hex');
  const list = x509SignatureList(certificate, '11111111-2222-4333-8444-555555555555');
  t.deepEqual(list.subarray(0, 16), guidBytes(efiGuids.certX509));
  t.is(list.readUInt32LE(16), list.length);
  t.is(list.readUInt32LE(24), 16 + certificate.length);
  t.deepEqual(list.subarray(44), certificate);
});

withTemplate('the enrolled store keeps the template\'s headers and everything past the variables, and holds PK, KEK, db and SecureBootEnable', async (t) => {
  const certificates = await keys;
  const empty = readFileSync(template);
  const store = enrolledVariableStore(empty, secureBootVariables(certificates), template);
  t.is(store.length, empty.length);
  const variables = readVariables(store);
  t.deepEqual(variables.map((variable) => variable.name), ['db', 'KEK', 'PK', 'SecureBootEnable']);
  t.true(variables.every((variable) => variable.state === 0x3f));
  const pk = variables.find((variable) => variable.name === 'PK')!;
  t.is(pk.attributes, 0x27);
  t.deepEqual(pk.guid, guidBytes(efiGuids.globalVariable));
  t.deepEqual(pk.data.subarray(44), certificates.pk);
  t.deepEqual(variables.find((variable) => variable.name === 'db')!.guid, guidBytes(efiGuids.imageSecurityDatabase));
  t.deepEqual(variables.find((variable) => variable.name === 'db')!.data.subarray(44), certificates.db);
  const storeStart = empty.readUInt16LE(0x30) + 28;
  t.deepEqual(store.subarray(0, storeStart), empty.subarray(0, storeStart));
  const end = storeStart + variables.reduce((sum, variable) => sum + Math.ceil((60 + (variable.name.length + 1) * 2 + variable.data.length) / 4) * 4, 0);
  t.deepEqual(store.subarray(end), empty.subarray(end));
});

withTemplate('the store is reproducible: the same certificates give the same bytes, owner included', async (t) => {
  const certificates = await keys;
  const empty = readFileSync(template);
  t.deepEqual(enrolledVariableStore(empty, secureBootVariables(certificates), template), enrolledVariableStore(empty, secureBootVariables(certificates), template));
  t.is(signatureOwner(certificates.pk), signatureOwner(Buffer.from(certificates.pk)));
  t.regex(signatureOwner(certificates.pk), /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
});

withTemplate('a store that already holds variables, or is not a variable store, is refused', async (t) => {
  const certificates = await keys;
  const enrolled = enrolledVariableStore(readFileSync(template), secureBootVariables(certificates), template);
  const again = t.throws(() => enrolledVariableStore(enrolled, secureBootVariables(certificates), 'enrolled.fd'));
  t.regex(again!.message, /enrolled\.fd is not an empty OVMF variable store: it already holds variables/);
  const notFv = t.throws(() => enrolledVariableStore(Buffer.alloc(4096), secureBootVariables(certificates), 'zeros.fd'));
  t.regex(notFv!.message, /no firmware volume header/);
});
